import type { ServicePort } from './target.js';

/**
 * ProbeIntent is what the load balancer should probe: the traffic port over TCP, the gateway's
 * readiness endpoint, or kube-proxy's health endpoint on the node (what AKS writes for its own
 * managed Istio gateways).
 */
export type ProbeIntent = 'tcp' | 'readiness' | 'kube-proxy';

/** ProbeSetting is a ProbeIntent, or `none` to leave the object alone. */
export type ProbeSetting = ProbeIntent | 'none';

/** PROBE_SETTINGS lists every valid ProbeSetting, in the order the docs give them. */
export const PROBE_SETTINGS: readonly ProbeSetting[] = ['tcp', 'readiness', 'kube-proxy', 'none'];

/**
 * KUBE_PROXY_HEALTH is kube-proxy's health endpoint on every node: port 10256 (kube-proxy
 * --healthz-bind-address default) and /healthz, which answers 200 while kube-proxy programs the node
 * (kubernetes pkg/proxy/healthcheck). AKS application routing probes it for its managed Istio
 * gateways (MicrosoftDocs azure-aks-docs, app-routing-gateway-api.md).
 */
export const KUBE_PROXY_HEALTH = { port: 10256, path: '/healthz' } as const;

/** isProbeSetting tells whether a string is a valid ProbeSetting. */
export function isProbeSetting(value: unknown): value is ProbeSetting {
  return typeof value === 'string' && (PROBE_SETTINGS as readonly string[]).includes(value);
}

/** ReadinessEndpoint is the HTTP endpoint a readiness probe targets: a Service port (name or number) and a path. */
export interface ReadinessEndpoint {
  port: string | number;
  path: string;
}

/**
 * PROBE_ANNOTATION is the per-object override: `tcp`, `readiness`, `kube-proxy` or `none` on a Service or Gateway
 * wins over the policy and its rules.
 */
export const PROBE_ANNOTATION = 'lb-probe-webhook/probe';

/**
 * ReadinessCheck is a readiness endpoint resolved against one Service: the port that answers (as
 * the policy or profile named it, `ref`, and as the Service has it, `port`) and the path.
 */
export interface ReadinessCheck {
  readonly ref: string | number;
  readonly port: ServicePort;
  readonly path: string;
  /**
   * onTrafficPorts is true when the traffic ports answer the path too (ingress-nginx's /healthz), so
   * a check of the traffic port itself (AWS ALB's `traffic-port`) is also right.
   */
  readonly onTrafficPorts?: boolean;
}

/**
 * Readiness is what a provider is told about the readiness endpoint of a target: a resolved check,
 * or why there is none (`missing`, a clause such as "readiness port health is not a port of the
 * Service") with the endpoint that was asked for.
 */
export type Readiness = { readonly check: ReadinessCheck } | { readonly missing: string; readonly endpoint: ReadinessEndpoint };
