/**
 * withMetrics wraps a Reviewer with the review metrics: one count per kind, operation and
 * decision, the duration, the patch and the warnings the client is shown (the same number the
 * response carries and the review line says).
 */
import type { Clock } from '../clock.js';
import type { ReviewRecorder } from '../metrics/metrics.js';
import type { Reviewer } from './review.js';

/** withMetrics returns a Reviewer that records each review next answers. */
export function withMetrics(next: Reviewer, recorder: ReviewRecorder, clock: Clock): Reviewer {
  return (request, policy) => {
    const started = clock.now();
    const answer = next(request, policy);
    recorder.reviewed(request.kind.kind, request.operation, answer.decision.outcome, (clock.now() - started) / 1000, answer.patch.length > 0, answer.warnings.length);
    return answer;
  };
}
