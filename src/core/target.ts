/**
 * The load-balancer target: the Service a cloud load balancer will probe, seen the same way
 * whether it is a Service under admission or the Service an implementation will generate for a
 * Gateway. Profiles and providers only ever see this view. What an implementation adds to the
 * Service it generates (Istio's status port) comes from its profile, as `gatewayPorts`.
 */
import { arrayAt, integerAt, isObject, objectAt, stringAt, stringMap, type JsonObject } from './json.js';

/** ServicePort is one port of the load-balanced Service. */
export interface ServicePort {
  readonly name: string | undefined;
  readonly port: number;
  readonly protocol: string;
  readonly appProtocol: string | undefined;
  /**
   * targetPort is the pod port: a number, a container port name, or undefined when not given (the
   * API server then defaults it to `port`). Only read by clouds that probe pods directly.
   */
  readonly targetPort?: number | string | undefined;
}

/** LoadBalancerTarget describes the Service a cloud load balancer probes. */
export interface LoadBalancerTarget {
  /** kind is the admitted object's kind: the Service itself, or a Gateway that generates it. */
  readonly kind: 'Service' | 'Gateway';
  /** ports are all ports of the Service, in order. */
  readonly ports: readonly ServicePort[];
  /** affected are the ports whose appProtocol makes the cloud probe GET /. */
  readonly affected: readonly ServicePort[];
  /** annotations are the annotations the Service carries (for a Gateway: those that propagate to it). */
  readonly annotations: Readonly<Record<string, string>>;
  readonly loadBalancerClass: string | undefined;
  readonly externalTrafficPolicy: string | undefined;
  /** type is the Service type (`ClusterIP` when absent); `LoadBalancer` for a Gateway's generated Service. */
  readonly type: string;
  /** labels are the Service's labels (for a Gateway: its own, which profiles read to recognize it). */
  readonly labels: Readonly<Record<string, string>>;
  /** gatewayClassName is the Gateway's class, for a Gateway target only. */
  readonly gatewayClassName?: string | undefined;
}

/** GATEWAY_GROUP is the Gateway API group; its v1 and v1beta1 Gateways are handled. */
export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/**
 * ISTIO_SERVICE_TYPE_ANNOTATION on a Gateway sets the type of the Service Istio generates
 * (LoadBalancer when absent).
 */
export const ISTIO_SERVICE_TYPE_ANNOTATION = 'networking.istio.io/service-type';

/** NOT_PROPAGATED_PREFIX marks Gateway annotations Istio does not copy to the generated Service. */
export const NOT_PROPAGATED_PREFIX = 'gateway.networking.k8s.io/';

const PROBED_APP_PROTOCOLS = new Set(['http', 'https']);
const PROBED_LISTENER_PROTOCOLS = new Set(['HTTP', 'HTTPS']);

/** isProbedAppProtocol tells whether an appProtocol makes a cloud probe the port with GET / (http or https, any case). */
export function isProbedAppProtocol(appProtocol: string | undefined): boolean {
  return appProtocol !== undefined && PROBED_APP_PROTOCOLS.has(appProtocol.toLowerCase());
}

/** findPort resolves a Service port by name or by number (a string of digits counts as a number). */
export function findPort(ports: readonly ServicePort[], ref: string | number): ServicePort | undefined {
  const asNumber = typeof ref === 'number' ? ref : /^\d+$/.test(ref) ? Number(ref) : undefined;
  if (asNumber !== undefined) return ports.find((p) => p.port === asNumber);
  return ports.find((p) => p.name === ref);
}

/** MAX_PORT is the highest TCP/UDP port number; the API server refuses a Service port or a listener port outside 1..MAX_PORT. */
export const MAX_PORT = 65535;

/**
 * invalidPorts names each port of a Service (spec.ports[].port) or a Gateway (spec.listeners[].port)
 * that the API server would refuse: absent, not a number (`"80"`), or outside 1-65535. The decision
 * leaves such an object as it is rather than write annotations for a port that cannot exist.
 */
export function invalidPorts(object: JsonObject, kind: 'Service' | 'Gateway'): string[] {
  const spec = objectAt(object, 'spec');
  const field = kind === 'Service' ? 'ports' : 'listeners';
  const problems: string[] = [];
  arrayAt(spec, field).forEach((entry, i) => {
    if (!isObject(entry)) return;
    const port = entry['port'];
    if (typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= MAX_PORT) return;
    problems.push(`spec.${field}[${i}].port: must be a port number from 1 to ${MAX_PORT}, got ${port === undefined ? 'none' : JSON.stringify(port)}`);
  });
  return problems;
}

/** serviceTarget builds the target of a Service of any type; the decision says which types it handles. */
export function serviceTarget(service: JsonObject): LoadBalancerTarget {
  const spec = objectAt(service, 'spec');
  const ports: ServicePort[] = [];
  for (const raw of arrayAt(spec, 'ports')) {
    const port = integerAt(raw, 'port');
    if (port === undefined) continue;
    ports.push({
      name: stringAt(raw, 'name'),
      port,
      protocol: stringAt(raw, 'protocol') ?? 'TCP',
      appProtocol: stringAt(raw, 'appProtocol'),
      targetPort: integerAt(raw, 'targetPort') ?? stringAt(raw, 'targetPort'),
    });
  }
  return {
    kind: 'Service',
    ports,
    affected: ports.filter((p) => p.protocol === 'TCP' && isProbedAppProtocol(p.appProtocol)),
    annotations: stringMap(objectAt(service, 'metadata')?.['annotations']),
    loadBalancerClass: stringAt(spec, 'loadBalancerClass'),
    externalTrafficPolicy: stringAt(spec, 'externalTrafficPolicy'),
    type: stringAt(spec, 'type') ?? 'ClusterIP',
    labels: stringMap(objectAt(service, 'metadata')?.['labels']),
  };
}

/** infrastructureAnnotations returns the Gateway's spec.infrastructure.annotations map, or undefined when absent. */
export function infrastructureAnnotations(gateway: JsonObject): JsonObject | undefined {
  return objectAt(objectAt(objectAt(gateway, 'spec'), 'infrastructure'), 'annotations');
}

/**
 * propagatingAnnotations returns the Gateway annotations Istio copies to the generated Service:
 * spec.infrastructure.annotations when that map exists, else metadata.annotations without the
 * gateway.networking.k8s.io/ keys.
 */
export function propagatingAnnotations(gateway: JsonObject): Record<string, string> {
  const infra = infrastructureAnnotations(gateway);
  if (infra !== undefined) return stringMap(infra);
  const meta = stringMap(objectAt(gateway, 'metadata')?.['annotations']);
  return Object.fromEntries(Object.entries(meta).filter(([k]) => !k.startsWith(NOT_PROPAGATED_PREFIX)));
}

/**
 * gatewayTarget builds the target of the Service a Gateway's implementation generates: the ports
 * its implementation adds first (`leadingPorts` of its class, such as Istio's status port), then
 * one port per distinct listener port (named after the first listener on it, appProtocol = its
 * protocol in lower case). Undefined when the Gateway asks for a Service type other than LoadBalancer.
 */
export function gatewayTarget(gateway: JsonObject, leadingPorts: (className: string) => readonly ServicePort[] = () => []): LoadBalancerTarget | undefined {
  // Istio reads the Service type from the Gateway's metadata.annotations only.
  const serviceType = stringMap(objectAt(gateway, 'metadata')?.['annotations'])[ISTIO_SERVICE_TYPE_ANNOTATION];
  if (serviceType !== undefined && serviceType !== 'LoadBalancer') return undefined;

  const spec = objectAt(gateway, 'spec');
  const className = stringAt(spec, 'gatewayClassName');
  const ports: ServicePort[] = className === undefined ? [] : [...leadingPorts(className)];
  const affectedPorts = new Set<number>();
  for (const listener of arrayAt(spec, 'listeners')) {
    if (!isObject(listener)) continue;
    const port = integerAt(listener, 'port');
    const protocol = stringAt(listener, 'protocol');
    if (port === undefined || protocol === undefined) continue;
    if (PROBED_LISTENER_PROTOCOLS.has(protocol)) affectedPorts.add(port);
    if (ports.some((p) => p.port === port)) continue;
    ports.push({ name: stringAt(listener, 'name'), port, protocol: 'TCP', appProtocol: protocol.toLowerCase() });
  }
  return {
    kind: 'Gateway',
    ports,
    affected: ports.filter((p) => affectedPorts.has(p.port)),
    annotations: propagatingAnnotations(gateway),
    loadBalancerClass: undefined,
    externalTrafficPolicy: undefined,
    type: 'LoadBalancer',
    labels: stringMap(objectAt(gateway, 'metadata')?.['labels']),
    gatewayClassName: className,
  };
}
