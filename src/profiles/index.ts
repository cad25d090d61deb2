/**
 * The profile registry. Adding a workload is one new module and one line here. The first profile
 * that recognizes a Service applies, so more specific profiles come first.
 */
import { haproxyIngress } from './haproxy-ingress.js';
import { ingressNginx } from './ingress-nginx.js';
import { istio } from './istio.js';
import type { Profile } from './profile.js';

/** PROFILE_LIST holds every profile, in the order they are tried. */
const PROFILE_LIST: readonly Profile[] = [istio, ingressNginx, haproxyIngress];

/** PROFILES maps each policy `profiles` entry to its profile. */
export const PROFILES: Readonly<Record<string, Profile>> = Object.fromEntries(PROFILE_LIST.map((p) => [p.name, p]));

/** PROFILE_NAMES lists the valid `profiles` entries, in the order they are tried. */
export const PROFILE_NAMES: readonly string[] = Object.keys(PROFILES);
