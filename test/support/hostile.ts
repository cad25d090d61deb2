/**
 * The memory benchmark's hostile but well-formed traffic, aimed at any webhook endpoint: parallel
 * reviews of the largest sizes, uploads that stall mid-body, a thousand idle keep-alive connections.
 * Every well-formed review must be answered 200; the caller measures memory while it runs. Bounded:
 * each scenario sends a fixed number of requests or runs for a fixed time.
 */
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { MAX_AFFECTED_PORTS } from '../../src/decision/decide.js';

/** Endpoint is where the reviews go: an address, a port, the CA and the name the certificate carries. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly ca: string;
  readonly servername: string;
}

/** Tally counts the well-formed reviews sent and those not answered 200. */
export interface Tally {
  readonly sent: number;
  readonly failed: number;
}

/** HostileScenario is one kind of hostile traffic. */
export interface HostileScenario {
  readonly name: string;
  readonly run: (endpoint: Endpoint) => Promise<Tally>;
}

const FIXTURE = fileURLToPath(new URL('../fixtures/istio-gateway-service.yaml', import.meta.url));

/** istioService is the Service Istio generates for a Gateway, as the API server sends it (with managedFields). */
export function istioService(): { metadata: Record<string, unknown>; spec: Record<string, unknown> } {
  const service = parse(readFileSync(FIXTURE, 'utf8')) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
  service.metadata.managedFields = [
    { manager: 'pilot-discovery', operation: 'Apply', apiVersion: 'v1', time: '2026-11-21T00:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': { 'f:gateway.istio.io/managed': {}, 'f:gateway.networking.k8s.io/gateway-name': {} }, 'f:ownerReferences': { 'k:{"uid":"5c7e0f5e-3b1a-4f55-9d2b-0c5d1a3e7b10"}': {} } }, 'f:spec': { 'f:ipFamilyPolicy': {}, 'f:ports': { 'k:{"port":15021,"protocol":"TCP"}': { '.': {}, 'f:appProtocol': {}, 'f:name': {}, 'f:port': {} }, 'k:{"port":80,"protocol":"TCP"}': { '.': {}, 'f:appProtocol': {}, 'f:name': {}, 'f:port': {} }, 'k:{"port":443,"protocol":"TCP"}': { '.': {}, 'f:appProtocol': {}, 'f:name': {}, 'f:port': {} } }, 'f:selector': {}, 'f:type': {} } } },
  ];
  service.spec = { ...service.spec, sessionAffinity: 'None', externalTrafficPolicy: 'Cluster', internalTrafficPolicy: 'Cluster', ipFamilies: ['IPv4'], allocateLoadBalancerNodePorts: true };
  return service;
}

/** updateReview wraps an object (and the old one) in an UPDATE AdmissionReview as the API server sends it. */
export function updateReview(uid: string, object: unknown, oldObject: unknown): Record<string, unknown> {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: '', version: 'v1', kind: 'Service' },
      resource: { group: '', version: 'v1', resource: 'services' },
      requestKind: { group: '', version: 'v1', kind: 'Service' },
      requestResource: { group: '', version: 'v1', resource: 'services' },
      name: 'gateway-istio',
      namespace: 'istio-ingress',
      operation: 'UPDATE',
      userInfo: { username: 'system:serviceaccount:istio-system:istiod', uid: 'f3c2', groups: ['system:serviceaccounts', 'system:serviceaccounts:istio-system', 'system:authenticated'] },
      object,
      oldObject,
      dryRun: false,
      options: { kind: 'UpdateOptions', apiVersion: 'meta.k8s.io/v1', fieldManager: 'pilot-discovery' },
    },
  };
}

/** manyPorts is an Istio-shaped Service with n http ports: about 70 bytes of JSON per port. */
export function manyPorts(n: number, from = 1): Record<string, unknown> {
  const service = istioService();
  service.spec['ports'] = Array.from({ length: n }, (_, i) => ({ name: `http-${from + i}`, port: from + i, protocol: 'TCP', appProtocol: 'http' }));
  return service;
}

/** post sends one body over its own connection and resolves with the status (0 when the connection failed). */
export function post(endpoint: Endpoint, body: string | Buffer): Promise<number> {
  return new Promise((resolve) => {
    const { host, port, ca, servername } = endpoint;
    const req = httpsRequest({ host, port, path: '/mutate', method: 'POST', ca, servername, agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', () => resolve(0));
    req.end(body);
  });
}

/** openTls opens a TLS connection to the endpoint. */
export function openTls(endpoint: Endpoint): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: endpoint.host, port: endpoint.port, ca: endpoint.ca, servername: endpoint.servername });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** steady sends small well-formed reviews one after another for ms, counting the answers other than 200. */
export async function steady(endpoint: Endpoint, ms: number): Promise<Tally> {
  const body = JSON.stringify(updateReview('steady', istioService(), istioService()));
  let sent = 0;
  let failed = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    sent++;
    if ((await post(endpoint, body)) !== 200) failed++;
  }
  return { sent, failed };
}

async function parallel(endpoint: Endpoint, body: string, n: number): Promise<Tally> {
  const statuses = await Promise.all(Array.from({ length: n }, () => post(endpoint, body)));
  return { sent: n, failed: statuses.filter((s) => s !== 200).length };
}

/** hostileScenarios are the memory benchmark's scenarios, in its order. */
export function hostileScenarios(): HostileScenario[] {
  const ports45k = JSON.stringify(updateReview('ports-45k', manyPorts(45_000), null)).replace('"oldObject":null,', '');
  // The largest review the API server can send (see DEFAULT_BODY_LIMIT): an UPDATE whose object
  // and old object are each just over 3 MiB of JSON.
  const maxUpdate = JSON.stringify(updateReview('max-update', manyPorts(48_000), manyPorts(48_000, 2)));
  // The heaviest review that is still annotated: as many http ports as one object is annotated for.
  const atCap = JSON.stringify(updateReview('ports-cap', manyPorts(MAX_AFFECTED_PORTS), manyPorts(MAX_AFFECTED_PORTS)));
  const mib = (body: string) => (body.length / 2 ** 20).toFixed(1);
  return [
    { name: 'idle, after one review', run: (endpoint) => parallel(endpoint, JSON.stringify(updateReview('one', istioService(), istioService())), 1) },
    ...[1, 8].map((n) => ({
      name: `${n} x ${mib(atCap)} MiB UPDATE of ${MAX_AFFECTED_PORTS.toLocaleString('en-US')} http ports, each annotated, in parallel`,
      run: (endpoint: Endpoint) => parallel(endpoint, atCap, n),
    })),
    ...[1, 4, 8].map((n) => ({ name: `${n} x ${mib(ports45k)} MiB review (45,000 http ports) in parallel`, run: (endpoint: Endpoint) => parallel(endpoint, ports45k, n) })),
    ...[2, 8].map((n) => ({ name: `${n} x ${mib(maxUpdate)} MiB UPDATE (object + oldObject) in parallel`, run: (endpoint: Endpoint) => parallel(endpoint, maxUpdate, n) })),
    {
      name: '30 uploads of 6 MiB stalled mid-body for 10 s, small reviews meanwhile',
      run: async (endpoint) => {
        const sockets = await Promise.all(Array.from({ length: 30 }, () => openTls(endpoint)));
        const half = Buffer.alloc(3 * 2 ** 20, 0x20);
        for (const socket of sockets) {
          socket.on('error', () => undefined);
          socket.write(`POST /mutate HTTP/1.1\r\nHost: ${endpoint.servername}\r\nContent-Type: application/json\r\nContent-Length: ${6 * 2 ** 20}\r\n\r\n{"pad":"`);
          socket.write(half);
        }
        const result = await steady(endpoint, 10_000);
        for (const socket of sockets) socket.destroy();
        return result;
      },
    },
    {
      name: '1,000 idle keep-alive connections, small reviews meanwhile',
      run: async (endpoint) => {
        const body = JSON.stringify(updateReview('idle', istioService(), istioService()));
        const request = `POST /mutate HTTP/1.1\r\nHost: ${endpoint.servername}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
        const sockets: TLSSocket[] = [];
        let failed = 0;
        for (let i = 0; i < 1000; i += 50) {
          const batch = await Promise.all(Array.from({ length: 50 }, () => openTls(endpoint)));
          await Promise.all(
            batch.map(
              (socket) =>
                new Promise<void>((resolve) => {
                  let answered = false;
                  socket.on('error', () => undefined);
                  socket.once('data', (d: Buffer) => {
                    answered = true;
                    if (!d.toString('latin1').startsWith('HTTP/1.1 200 ')) failed++;
                    resolve();
                  });
                  // A connection closed before its answer is a failed review, not a hang.
                  socket.once('close', () => {
                    if (answered) return;
                    failed++;
                    resolve();
                  });
                  socket.write(request);
                }),
            ),
          );
          sockets.push(...batch);
        }
        const result = await steady(endpoint, 3000);
        for (const socket of sockets) socket.destroy();
        return { sent: result.sent + 1000, failed: result.failed + failed };
      },
    },
  ];
}
