/** A small HTTPS client for tests that must cross a real TLS socket. */
import { request } from 'node:https';
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
