/** A small HTTPS client for tests that must cross a real TLS socket, and raw socket helpers. */
import { request } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/** HttpsResponse is a status, the negotiated peer certificate and the body. */
export interface HttpsResponse {
  readonly status: number;
  readonly body: string;
  readonly peerCertificateFingerprint: string;
}

/** postJson posts a body over HTTPS, trusting only the CA given. */
export function postJson(url: string, body: unknown, ca: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', ca, headers, agent: false }, (res) => {
      let data = '';
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      res.on('data', (d: Buffer) => (data += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data, peerCertificateFingerprint: fingerprint }));
    });
    req.on('error', reject);
    req.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}

/** openTls opens a raw TLS connection to a loopback server trusting ca, resolved after the handshake; socket errors are left to the caller's assertions. */
export async function openTls(port: number, ca: string): Promise<TLSSocket> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('secureConnect', resolve));
  return socket;
}

/** openTcp opens a plain TCP connection to a loopback port, resolved once connected; socket errors are left to the caller's assertions. */
export async function openTcp(port: number): Promise<Socket> {
  const socket = netConnect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
}

/** Received is what a socket read until it closed. */
export interface Received {
  readonly text: string;
}

/** untilClosed reads a socket to its end and resolves with everything it received once it closes. */
export function untilClosed(socket: Socket): Promise<Received> {
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  return new Promise((resolve) => {
    if (socket.destroyed) resolve({ text });
    else socket.once('close', () => resolve({ text }));
  });
}

/** requestText is a raw HTTP/1.1 POST /mutate of body, as the API server sends it. */
export function requestText(body: string, extraHeaders = ''): string {
  return `POST /mutate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`;
}

/** nextAnswer resolves with the next whole HTTP response (head and Content-Length body) read from a keep-alive socket. */
export function nextAnswer(socket: Socket): Promise<{ head: string; body: string }> {
  return new Promise((resolve, reject) => {
    let buffer = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      buffer = Buffer.concat([buffer, d]);
      const end = buffer.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffer.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (buffer.length < end + 4 + length) return;
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve({ head, body: buffer.subarray(end + 4, end + 4 + length).toString('utf8') });
    };
    const onClose = (): void => reject(new Error(`the connection closed before a whole answer; got ${JSON.stringify(buffer.toString('latin1').slice(0, 200))}`));
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}

/** waitUntil polls check until it holds, and fails naming what it waited for after timeoutMs: a bound for a hang, never a measurement. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting (${timeoutMs} ms) for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
