/**
 * audit against loopback HTTP servers that play a faulty API server: one that never answers, one
 * that repeats its continue token, one that hands out new tokens forever. The real API server
 * tests are in test/e2e/audit.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli.js';
import { fixture } from '../support/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'lbp-audit-faults-'));
const policy = join(tmp, 'policy.yaml');
let server: Server | undefined;
const requests: string[] = [];

beforeAll(() => writeFileSync(policy, 'provider: azure\nkinds: [Service]\n'));
afterEach(async () => {
  const open = server;
  open?.closeAllConnections();
  if (open !== undefined) await new Promise((resolve) => open.close(resolve));
  server = undefined;
  requests.length = 0;
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const DISCOVERY = {
  kind: 'APIResourceList',
  apiVersion: 'v1',
  groupVersion: 'v1',
  resources: [{ name: 'services', singularName: 'service', namespaced: true, kind: 'Service', verbs: ['list', 'patch'] }],
};

/** fakeApiServer serves /api/v1 discovery and hands every other request to listPage; it returns a kubeconfig pointing at it. */
async function fakeApiServer(listPage: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.url === '/api/v1') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(DISCOVERY));
      return;
    }
    listPage(req, res);
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const kubeconfig = join(tmp, `kubeconfig-${port}`);
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: `http://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake', user: { token: 'fake' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
      'current-context': 'fake',
    }),
  );
  return kubeconfig;
}

function page(res: ServerResponse, token: string | undefined): void {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ kind: 'ServiceList', apiVersion: 'v1', metadata: { resourceVersion: '1', ...(token !== undefined && { continue: token }) }, items: [] }));
}

describe('audit against a faulty API server', () => {
  it('an API server that never answers ends the run after --request-timeout with one line, exit 2.', async () => {
    const kubeconfig = await fakeApiServer(() => {
      // Accept the request, never answer.
    });
    const started = Date.now();
    const { code, stdout, stderr } = await runCli(['audit', '--policy', policy, '--kubeconfig', kubeconfig, '--request-timeout', '1s']);
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr).toMatch(/^lb-probe-webhook audit: listing Services: no answer from http:\/\/127\.0\.0\.1:\d+ within 1s \(--request-timeout\)\n$/);
    expect(Date.now() - started).toBeLessThan(25_000);
  });

  it('an API server that answers the headers and then stalls the body is cut off by the same timeout.', async () => {
    const kubeconfig = await fakeApiServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"kind":"ServiceList","items":[');
    });
    const { code, stderr } = await runCli(['audit', '--policy', policy, '--kubeconfig', kubeconfig, '--request-timeout', '1s']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^lb-probe-webhook audit: listing Services: no answer from http:\/\/127\.0\.0\.1:\d+ within 1s \(--request-timeout\)\n$/);
  });

  it('a continue token that comes back a second time stops the listing with one line, exit 2.', async () => {
    const kubeconfig = await fakeApiServer((_req, res) => page(res, 'same-token'));
    const { code, stdout, stderr } = await runCli(['audit', '--policy', policy, '--kubeconfig', kubeconfig]);
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr).toBe('lb-probe-webhook audit: listing Services: the API server returned the same continue token twice (after 2 pages); stopped\n');
    expect(requests.filter((r) => r.startsWith('/api/v1/services'))).toHaveLength(2);
  });

  it('new continue tokens without end stop after --max-pages pages with one line, exit 2.', async () => {
    let n = 0;
    const kubeconfig = await fakeApiServer((_req, res) => page(res, `token-${n++}`));
    const { code, stderr } = await runCli(['audit', '--policy', policy, '--kubeconfig', kubeconfig, '--max-pages', '5']);
    expect(code).toBe(2);
    expect(stderr).toBe('lb-probe-webhook audit: listing Services: more than 5 pages of 500 (--max-pages); stopped\n');
    expect(requests.filter((r) => r.startsWith('/api/v1/services'))).toHaveLength(5);
  });

  it('a listing that ends is read to the end: three pages, then nothing to change, exit 0.', async () => {
    let n = 0;
    const kubeconfig = await fakeApiServer((req, res) => {
      expect(new URL(req.url ?? '', 'http://x').searchParams.get('continue') ?? undefined).toBe(n === 0 ? undefined : `token-${n}`);
      n++;
      page(res, n < 3 ? `token-${n}` : undefined);
    });
    const { code, stdout } = await runCli(['audit', '--policy', policy, '--kubeconfig', kubeconfig]);
    expect({ code, stdout }).toEqual({ code: 0, stdout: 'nothing to change in 0 objects\n' });
    expect(n).toBe(3);
  });

  it('an API server that refuses the connection is named with the cause, exit 2.', async () => {
    const kubeconfig = await fakeApiServer(() => undefined);
    const url = JSON.parse(readFileSync(kubeconfig, 'utf8')).clusters[0].cluster.server as string;
    // Nothing listens on the port once the server is closed.
    const open = server;
    open?.closeAllConnections();
    await new Promise((resolve) => open?.close(resolve));
    server = undefined;
    const { code, stdout, stderr } = await runCli(['audit', '--policy', policy, '--kubeconfig', kubeconfig]);
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr).toBe(`lb-probe-webhook audit: listing Services: connection refused to ${url} (ECONNREFUSED)\n`);
  });

  it('an API server that refuses the credentials is named with its Status message, exit 2.', async () => {
    const kubeconfig = await fakeApiServer((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'services is forbidden: User "fake" cannot list resource "services"', reason: 'Forbidden', code: 403 }));
    });
    const url = JSON.parse(readFileSync(kubeconfig, 'utf8')).clusters[0].cluster.server as string;
    const { code, stderr } = await runCli(['audit', '--policy', policy, '--kubeconfig', kubeconfig]);
    expect(code).toBe(2);
    expect(stderr).toBe(`lb-probe-webhook audit: listing Services: ${url}: 403 services is forbidden: User "fake" cannot list resource "services"\n`);
  });

  it('with no kubeconfig anywhere (no --kubeconfig, no KUBECONFIG, no ~/.kube/config, not in a pod) says so, exit 2.', async () => {
    const home = mkdtempSync(join(tmp, 'home-'));
    const { code, stdout, stderr } = await runCli(['audit', '--policy', policy], '', { HOME: home, KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '' });
    expect({ code, stdout, stderr }).toEqual({ code: 2, stdout: '', stderr: 'lb-probe-webhook audit: no kubeconfig found; set KUBECONFIG or --kubeconfig\n' });
  });

  it('--context picks a context of the kubeconfig, and one it does not have is named with those it has, exit 2.', async () => {
    let n = 0;
    const kubeconfig = await fakeApiServer((_req, res) => {
      n++;
      page(res, undefined);
    });
    const config = JSON.parse(readFileSync(kubeconfig, 'utf8'));
    // The current context points nowhere; --context fake is the one that works.
    config.clusters.push({ name: 'nowhere', cluster: { server: 'http://127.0.0.1:1' } });
    config.contexts.push({ name: 'nowhere', context: { cluster: 'nowhere', user: 'fake' } });
    config['current-context'] = 'nowhere';
    writeFileSync(kubeconfig, JSON.stringify(config));
    expect(await runCli(['audit', '--policy', policy, '--kubeconfig', kubeconfig, '--context', 'fake'])).toEqual({ code: 0, stdout: 'nothing to change in 0 objects\n', stderr: '' });
    expect(n).toBe(1);
    expect(await runCli(['audit', '--policy', policy, '--kubeconfig', kubeconfig, '--context', 'staging'])).toEqual({
      code: 2,
      stdout: '',
      stderr: `lb-probe-webhook audit: --kubeconfig ${kubeconfig}: no context "staging" (--context); it has fake, nowhere\n`,
    });
  });

  it('audit --fix whose server-side dry run is refused applies nothing, names the object and the reason, and exits 2.', async () => {
    const service = fixture('istio-gateway-service.yaml');
    const patches: string[] = [];
    const kubeconfig = await fakeApiServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET') {
        res.end(JSON.stringify({ kind: 'ServiceList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: [service] }));
        return;
      }
      patches.push(`${req.method} ${req.url}`);
      res.statusCode = 422;
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Invalid', code: 422, message: 'Service "gateway-istio" is invalid: metadata.annotations: Too long: must have at most 262144 bytes' }));
    });
    const { code, stdout, stderr } = await runCli(['audit', '--policy', policy, '--kubeconfig', kubeconfig, '--fix']);
    expect(code).toBe(2);
    expect(stdout).toMatch(/fixed 0 of 1 to change \(1 object scanned\)\n$/);
    expect(stderr).toMatch(/^lb-probe-webhook audit: Service istio-ingress\/gateway-istio: server-side dry run refused the change, nothing applied: .*Too long/m);
    // Only dry runs were sent: nothing was applied.
    expect(patches.length).toBeGreaterThan(0);
    expect(patches.every((p) => p.startsWith('PATCH /api/v1/namespaces/istio-ingress/services/gateway-istio?') && p.includes('dryRun=All'))).toBe(true);
  });
});
