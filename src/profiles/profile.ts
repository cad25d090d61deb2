/**
 * The profile contract: one workload per module. A profile recognizes the Service that stands for
 * its workload (labels, owner, ports) and says what readiness means for it: an HTTP endpoint on a
 * port of that Service, or none (TCP). Providers then write that endpoint in their cloud's terms.
 */
import type { ReadinessEndpoint } from '../core/probe.js';
import type { LoadBalancerTarget, ServicePort } from '../core/target.js';

/**
 * ReadinessPlan is what readiness means for a recognized workload: an endpoint on a port of its
 * Service (`onTrafficPorts` when the traffic ports answer the path too), or `tcp` with a clause
 * saying why there is no endpoint to probe ("the health endpoint of X is not a port of the Service").
 */
export type ReadinessPlan =
  | { readonly endpoint: ReadinessEndpoint; readonly onTrafficPorts?: boolean }
  | { readonly tcp: string };

/** Profile is one workload's knowledge. Implementations are pure. */
export interface Profile {
  /** name is the policy's `profiles` entry and what decisions, warnings and logs call it. */
  readonly name: string;
  /**
   * gatewayPorts returns the ports the workload's controller puts first on the Service it
   * generates for a Gateway of className (Istio's status port), or [] when the class is not its own.
   */
  gatewayPorts?(className: string): readonly ServicePort[];
  /** recognizes tells whether the target is this workload's Service; `readiness` is the policy's readiness endpoint. */
  recognizes(target: LoadBalancerTarget, readiness: ReadinessEndpoint): boolean;
  /** plan says what readiness means for a target the profile recognized. */
  plan(target: LoadBalancerTarget, readiness: ReadinessEndpoint): ReadinessPlan;
}

/** hasLabels tells whether every label in wanted is on the target with that value. */
export function hasLabels(target: LoadBalancerTarget, wanted: Readonly<Record<string, string>>): boolean {
  return Object.entries(wanted).every(([k, v]) => target.labels[k] === v);
}
