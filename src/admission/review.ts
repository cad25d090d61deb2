/**
 * The review seam: one function from a decoded, version-neutral admission request and the policy
 * in force to the answer with its messages, below any HTTP. The HTTP route only decodes, calls it
 * and encodes; logging and metrics are Reviewer wrappers around it (logged.ts, measured.ts), each
 * testable alone, like kubewebhook's mutator and its metrics and tracing wrappers.
 */
import type { Operation } from 'fast-json-patch';
import { decide, userMessages, type Decision } from '../decision/decide.js';
import type { Policy } from '../policy/schema.js';

/** OPERATIONS are the admission operations a request may carry. */
export const OPERATIONS = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'] as const;

/** AdmissionRequest is the part of an AdmissionReview request the webhook reads, checked (http/review.ts decodes it). */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: { readonly group: string; readonly version: string; readonly kind: string };
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly operation: (typeof OPERATIONS)[number];
  readonly object: unknown;
  readonly dryRun: boolean;
}

/** AdmissionAnswer is what the webhook answers to one request: always allowed, with the patch and the warnings the client is shown. */
export interface AdmissionAnswer {
  readonly uid: string;
  /** patch is the JSON patch to apply; empty when nothing changes. */
  readonly patch: readonly Operation[];
  /** warnings are exactly the warnings the response carries: at most MAX_WARNINGS, each at most MAX_WARNING_LENGTH characters. */
  readonly warnings: readonly string[];
  /** decision is the decision behind the answer, for the log line and the metrics. */
  readonly decision: Decision;
}

/** Reviewer answers one admission request under a policy; review is the real one, the wrappers add logs and metrics. */
export type Reviewer = (request: AdmissionRequest, policy: Policy) => AdmissionAnswer;

/**
 * MAX_WARNING_LENGTH: Kubernetes asks webhooks to keep warnings under 120 characters where
 * possible and may truncate those over 256 (admission.k8s.io/v1 AdmissionResponse.warnings).
 */
export const MAX_WARNING_LENGTH = 256;

/** MAX_WARNINGS bounds the number of warnings in one response. */
export const MAX_WARNINGS = 20;

/**
 * boundWarnings keeps what a client is shown within the API server's limits: at most MAX_WARNINGS
 * (the last one saying how many more are in the webhook's log) and each cut to
 * MAX_WARNING_LENGTH characters, ending in an ellipsis when cut.
 */
export function boundWarnings(warnings: readonly string[]): readonly string[] {
  if (warnings.length === 0) return warnings;
  const out = warnings.slice(0, MAX_WARNINGS).map((w) => (w.length > MAX_WARNING_LENGTH ? `${w.slice(0, MAX_WARNING_LENGTH - 1)}…` : w));
  if (warnings.length > MAX_WARNINGS) out[MAX_WARNINGS - 1] = `lb-probe-webhook: ${warnings.length - MAX_WARNINGS + 1} more warnings in the webhook log`;
  return out;
}

/** review decides one request under the policy and returns the answer: the uid copied, the patch, the bounded warnings. */
export function review(request: AdmissionRequest, policy: Policy): AdmissionAnswer {
  const decision = decide({ object: request.object, operation: request.operation, policy, namespace: request.namespace });
  return { uid: request.uid, patch: decision.patch, warnings: boundWarnings(userMessages(decision)), decision };
}
