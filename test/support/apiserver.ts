/**
 * Requests straight to a test API server over HTTPS with the admin token of the kubeconfig the
 * harness wrote: for callers that need many requests at a rate no kubectl process per request keeps
 * (the churn of the node tests, the differential test's dry runs).
 */
import { readFileSync } from 'node:fs';
import { request, type Agent } from 'node:https';

/** ApiAccess is how to reach the API server as admin. */
export interface ApiAccess {
  readonly server: string;
  readonly ca: string;
  readonly token: string;
}

/** apiAccessFrom reads the server, CA and token from a kubeconfig the test harness wrote (JSON, one user with a token). */
export function apiAccessFrom(kubeconfig: string): ApiAccess {
  const config = JSON.parse(readFileSync(kubeconfig, 'utf8')) as {
    clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
    users: { user: { token: string } }[];
  };
  const cluster = config.clusters[0]?.cluster;
  const token = config.users[0]?.user.token;
  if (cluster === undefined || token === undefined) throw new Error(`${kubeconfig}: no cluster or token`);
  return { server: cluster.server, ca: Buffer.from(cluster['certificate-authority-data'], 'base64').toString(), token };
}

/** ApiResponse is a status and a parsed JSON body. */
export interface ApiResponse {
  readonly status: number;
  readonly body: any;
}

/** apiCall sends one request to the API server; a network error resolves as status 0 with the message in body. */
export function apiCall(access: ApiAccess, agent: Agent | undefined, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse> {
  return new Promise((resolve) => {
    const url = new URL(path, access.server);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      url,
      {
        method,
        ca: access.ca,
        agent,
        timeout: 30_000,
        headers: { authorization: `Bearer ${access.token}`, accept: 'application/json', ...(payload !== undefined && { 'content-type': contentType }) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
    req.end(payload);
  });
}
