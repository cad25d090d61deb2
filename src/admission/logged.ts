/**
 * withReviewLog wraps a Reviewer with the one structured log line per review (uid, kind,
 * namespace, name, operation, dryRun, decision, probe, profile, changes, warnings, duration), and
 * at debug level each patch and the notes behind a no-op.
 */
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { InfoLine } from '../log/log.js';
import type { AdmissionAnswer, AdmissionRequest, Reviewer } from './review.js';

/** REVIEW_MESSAGE is the msg of the review line. */
export const REVIEW_MESSAGE = 'review';

/** ReviewLogOptions is where withReviewLog writes. */
export interface ReviewLogOptions {
  /** line writes the review line (Log.infoLine(REVIEW_MESSAGE)). */
  readonly line: InfoLine;
  /** logger takes the debug detail. */
  readonly logger: Logger;
  readonly clock: Clock;
}

/**
 * reviewMembers renders the line's fields as JSON members, the strings that come from the
 * request escaped by JSON.stringify: built directly rather than through pino's generic object
 * serialisation, it is the cheapest part of the hot path that still says everything.
 */
export function reviewMembers(request: AdmissionRequest, answer: AdmissionAnswer, durationMs: number): string {
  const { decision } = answer;
  return (
    `,"uid":${JSON.stringify(request.uid)},"kind":${JSON.stringify(request.kind.kind)}` +
    (request.namespace === undefined ? '' : `,"namespace":${JSON.stringify(request.namespace)}`) +
    (request.name === undefined ? '' : `,"name":${JSON.stringify(request.name)}`) +
    `,"operation":"${request.operation}","dryRun":${request.dryRun},"decision":"${decision.outcome}"` +
    (decision.probe === undefined ? '' : `,"probe":"${decision.probe}"`) +
    (decision.profile === undefined ? '' : `,"profile":${JSON.stringify(decision.profile)}`) +
    `,"changes":${decision.changes.length},"warnings":${answer.warnings.length},"durationMs":${durationMs}`
  );
}

/** withReviewLog returns a Reviewer that logs each review next answers. */
export function withReviewLog(next: Reviewer, options: ReviewLogOptions): Reviewer {
  const { line, logger, clock } = options;
  return (request, policy) => {
    const started = clock.now();
    const answer = next(request, policy);
    if (line.enabled) line.write(reviewMembers(request, answer, Math.round((clock.now() - started) * 1000) / 1000));
    const { decision } = answer;
    if ((decision.patch.length > 0 || decision.notes.length > 0) && logger.isLevelEnabled('debug')) {
      logger.debug({ uid: request.uid, patch: decision.patch, notes: decision.notes }, 'review detail');
    }
    return answer;
  };
}
