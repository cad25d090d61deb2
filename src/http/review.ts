/**
 * The AdmissionReview edge: decode an untrusted body into a version-neutral request once, and
 * encode an answer back into an admission.k8s.io/v1 AdmissionReview. Nothing else in the project
 * knows the wire format.
 */
import { OPERATIONS, type AdmissionAnswer, type AdmissionRequest } from '../admission/review.js';
import { isObject, objectAt, stringAt } from '../core/json.js';
import { ErrorCode, WebhookError } from '../errors.js';

/** ADMISSION_API_VERSION is the only AdmissionReview version served (admissionReviewVersions: [v1]). */
export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

/** MAX_UID_LENGTH bounds the uid echoed back; API server uids are 36-character UUIDs. */
const MAX_UID_LENGTH = 256;

/**
 * MAX_OBJECT_DEPTH bounds the nesting of request.object. A Service or Gateway, managedFields
 * included, nests about a dozen levels; the limit keeps the recursive walks over it (this check,
 * the diff of the members written, encoding) far from the stack's depth however the body was built.
 */
export const MAX_OBJECT_DEPTH = 64;

/** depthExceeds tells whether a JSON value nests deeper than max levels; it never recurses deeper than max + 1, and never into a primitive. */
export function depthExceeds(value: unknown, max: number, depth = 1): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (depth > max) return true;
  if (Array.isArray(value)) {
    for (const child of value) if (typeof child === 'object' && child !== null && depthExceeds(child, max, depth + 1)) return true;
    return false;
  }
  for (const key in value) {
    const child = (value as Record<string, unknown>)[key];
    if (typeof child === 'object' && child !== null && depthExceeds(child, max, depth + 1)) return true;
  }
  return false;
}

function invalid(message: string): WebhookError {
  return new WebhookError(ErrorCode.REVIEW_INVALID, `malformed AdmissionReview: ${message}`);
}

/** decodeReview checks a parsed JSON body and returns its request; it throws LBP_REVIEW_INVALID with the first problem found. */
export function decodeReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw invalid('the body must be a JSON object');
  const apiVersion = body['apiVersion'];
  if (apiVersion !== ADMISSION_API_VERSION) {
    throw invalid(`apiVersion must be ${ADMISSION_API_VERSION}, got ${JSON.stringify(apiVersion ?? null).slice(0, 64)}`);
  }
  if (body['kind'] !== 'AdmissionReview') throw invalid(`kind must be AdmissionReview, got ${JSON.stringify(body['kind'] ?? null).slice(0, 64)}`);
  const request = body['request'];
  if (!isObject(request)) throw invalid('request must be an object');
  const uid = request['uid'];
  if (typeof uid !== 'string' || uid.length === 0 || uid.length > MAX_UID_LENGTH) {
    throw invalid(`request.uid must be a non-empty string of at most ${MAX_UID_LENGTH} characters`);
  }
  const operation = request['operation'];
  if (typeof operation !== 'string' || !(OPERATIONS as readonly string[]).includes(operation)) {
    throw invalid(`request.operation must be one of ${OPERATIONS.join(', ')}`);
  }
  const kind = objectAt(request, 'kind');
  const kindName = stringAt(kind, 'kind');
  if (kind === undefined || kindName === undefined || typeof kind['version'] !== 'string') {
    throw invalid('request.kind must be an object with string version and kind');
  }
  const object = request['object'];
  if ((operation === 'CREATE' || operation === 'UPDATE') && !isObject(object)) {
    throw invalid(`request.object must be an object for ${operation}`);
  }
  if (depthExceeds(object, MAX_OBJECT_DEPTH)) throw invalid(`request.object nests deeper than ${MAX_OBJECT_DEPTH} levels`);
  const dryRun = request['dryRun'];
  if (dryRun !== undefined && dryRun !== null && typeof dryRun !== 'boolean') throw invalid('request.dryRun must be a boolean');
  for (const field of ['namespace', 'name'] as const) {
    const value = request[field];
    if (value !== undefined && value !== null && typeof value !== 'string') throw invalid(`request.${field} must be a string`);
  }
  return {
    uid,
    kind: { group: stringAt(kind, 'group') ?? '', version: kind['version'], kind: kindName },
    namespace: stringAt(request, 'namespace') || undefined,
    name: stringAt(request, 'name') || stringAt(objectAt(object, 'metadata'), 'name') || undefined,
    operation: operation as AdmissionRequest['operation'],
    object,
    dryRun: dryRun === true,
  };
}

/**
 * encodeAnswer renders the AdmissionReview answer as the JSON text sent: always allowed, the uid
 * copied, the patch base64-encoded when there is one, and the answer's warnings. Built as one
 * string: no response object for the framework to walk and stringify.
 */
export function encodeAnswer(answer: AdmissionAnswer): string {
  const patch = answer.patch.length === 0 ? '' : `,"patchType":"JSONPatch","patch":"${Buffer.from(JSON.stringify(answer.patch)).toString('base64')}"`;
  const warnings = answer.warnings.length === 0 ? '' : `,"warnings":${JSON.stringify(answer.warnings)}`;
  return `{"apiVersion":"${ADMISSION_API_VERSION}","kind":"AdmissionReview","response":{"uid":${JSON.stringify(answer.uid)},"allowed":true${patch}${warnings}}}`;
}
