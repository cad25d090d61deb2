/**
 * Service churn through the API server while something happens to the webhook: creates of new
 * LoadBalancer Services and updates of existing ones that take the probe annotation away, at a steady
 * rate, each of which the webhook must annotate. With failurePolicy Ignore a failed webhook call
 * passes silently, so the answer is read back afterwards: every Service must carry the annotation.
 *
 * Requests go straight to the API server over HTTPS with the admin token (a kubectl process per
 * request could not keep the rate), at most MAX_IN_FLIGHT at a time; a tick that finds them all busy
 * is counted as late, so a slow API server shows instead of lowering the rate unseen.
 */
import { Agent } from 'node:https';
import { apiCall, type ApiAccess, type ApiResponse } from './apiserver.js';

/** MAX_IN_FLIGHT bounds the requests waiting at once. */
const MAX_IN_FLIGHT = 64;

/** ChurnOptions say where, how fast, and what every Service must carry afterwards. */
export interface ChurnOptions {
  readonly namespace: string;
  /** perSecond is creates plus updates per second (half each once there is something to update). */
  readonly perSecond: number;
  /** prefix names the Services (prefix-N), so several churns can share a namespace. */
  readonly prefix: string;
  /** annotation is the key the webhook adds to each of them, and that each update removes. */
  readonly annotation: string;
}

/** ChurnResult is what happened during a churn. */
export interface ChurnResult {
  readonly creates: number;
  readonly updates: number;
  /** errors are the requests the client saw fail, one line each. */
  readonly errors: readonly string[];
  /** late counts the requests not sent because MAX_IN_FLIGHT requests were still waiting. */
  readonly late: number;
  readonly seconds: number;
  /** unannotated names the writes answered without the annotation, then the Services read back without it. */
  readonly unannotated: readonly string[];
  /** checked is how many Services were read back. */
  readonly checked: number;
  /** p50Ms, p99Ms and maxMs are the latencies of the creates and updates, in milliseconds. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

/**
 * loadBalancerService is the Service every churn creates: one http port, as an ingress gateway has.
 * Thousands of them are made, so they cost the node nothing: no node ports (there are only 2,768),
 * no selector (no EndpointSlices), and kube-proxy skips them (service-proxy-name), as it would
 * otherwise rewrite its rules for each.
 */
function loadBalancerService(name: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels: { 'lb-probe-webhook.test/churn': 'true', 'service.kubernetes.io/service-proxy-name': 'none' } },
    spec: { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP', appProtocol: 'http' }] },
  };
}

/** Churn is a running churn; stop() ends it, waits for the requests in flight and reads every Service back. */
export interface Churn {
  stop(): Promise<ChurnResult>;
}

/** startChurn starts creating and updating Services at options.perSecond. */
export function startChurn(access: ApiAccess, options: ChurnOptions): Churn {
  const agent = new Agent({ keepAlive: true, maxSockets: MAX_IN_FLIGHT });
  const base = `/api/v1/namespaces/${options.namespace}/services`;
  const created: string[] = [];
  const toUpdate: string[] = [];
  const errors: string[] = [];
  const inFlight = new Set<Promise<void>>();
  let creates = 0;
  let updates = 0;
  let late = 0;
  let tick = 0;
  const started = Date.now();

  const latencies: number[] = [];
  const unannotatedWrites: string[] = [];
  const track = (what: string, call: Promise<ApiResponse>, ok: (r: ApiResponse) => void): void => {
    const sentAt = Date.now();
    const done = call.then((response) => {
      latencies.push(Date.now() - sentAt);
      if (response.status < 200 || response.status >= 300) {
        errors.push(`${what}: ${response.status} ${typeof response.body === 'string' ? response.body : (response.body?.message ?? JSON.stringify(response.body))}`);
        return;
      }
      // The API server answers with the object as stored, after mutating admission: each write is
      // checked on its own, so a later write cannot hide one the webhook missed.
      if (response.body?.metadata?.annotations?.[options.annotation] === undefined) unannotatedWrites.push(what);
      ok(response);
    });
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  };

  const send = (): void => {
    tick++;
    if (inFlight.size >= MAX_IN_FLIGHT) {
      late++;
      return;
    }
    if (tick % 2 === 1 || created.length === 0) {
      const name = `${options.prefix}-${creates++}`;
      track(`create ${name}`, apiCall(access, agent, 'POST', base, loadBalancerService(name)), () => {
        created.push(name);
        toUpdate.push(name);
      });
    } else {
      // An update that takes the annotation away (and changes a label): the webhook must put it back.
      // Each goes to the oldest Service not updated yet, so the updates spread over all of them.
      const name = (toUpdate.shift() ?? created[updates % created.length]) as string;
      updates++;
      const patch = { metadata: { labels: { 'lb-probe-webhook.test/round': String(tick) }, annotations: { [options.annotation]: null } } };
      track(`update ${name}`, apiCall(access, agent, 'PATCH', `${base}/${name}`, patch, 'application/merge-patch+json'), () => undefined);
    }
  };
  // Open loop: every 10 ms, whatever is due by now is sent, so a late timer does not lower the rate.
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) * options.perSecond) / 1000);
    while (tick < due) send();
  }, 10);

  return {
    async stop() {
      clearInterval(timer);
      const seconds = (Date.now() - started) / 1000;
      while (inFlight.size > 0) await Promise.all([...inFlight]);
      const unannotated: string[] = [...unannotatedWrites];
      const list = await apiCall(access, agent, 'GET', `${base}?labelSelector=${encodeURIComponent('lb-probe-webhook.test/churn=true')}`);
      const stored = new Map<string, any>((list.status === 200 ? (list.body.items as any[]) : []).map((item) => [item.metadata.name as string, item]));
      if (list.status !== 200) errors.push(`list ${base}: ${list.status}`);
      for (const name of created) {
        const item = stored.get(name);
        if (item === undefined) errors.push(`read ${name}: not found`);
        else if (item.metadata?.annotations?.[options.annotation] === undefined) unannotated.push(`read ${name}`);
      }
      agent.destroy();
      latencies.sort((a, b) => a - b);
      const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
      return { creates, updates, errors, late, seconds, unannotated, checked: created.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: latencies.at(-1) ?? 0 };
    },
  };
}
