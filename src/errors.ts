/**
 * The error catalogue. Every error the project raises on purpose carries one of these stable
 * codes, so logs, metrics, HTTP responses and CLI exit codes can be matched on the code rather
 * than on message text.
 */

/** ErrorCode lists every stable error code and the HTTP status it maps to at the edge. */
export const ErrorCode = {
  /** The policy file cannot be read, is not YAML, or breaks the schema. */
  POLICY_INVALID: { code: 'LBP_POLICY_INVALID', status: 500 },
  /** The request body is not JSON. */
  BODY_NOT_JSON: { code: 'LBP_BODY_NOT_JSON', status: 400 },
  /** The request body is JSON but not an admission.k8s.io/v1 AdmissionReview with a request. */
  REVIEW_INVALID: { code: 'LBP_REVIEW_INVALID', status: 400 },
  /** The request carries a content type other than application/json. */
  UNSUPPORTED_MEDIA_TYPE: { code: 'LBP_UNSUPPORTED_MEDIA_TYPE', status: 415 },
  /** The request body is larger than the server accepts. */
  BODY_TOO_LARGE: { code: 'LBP_BODY_TOO_LARGE', status: 413 },
  /** No route for the request's method and path. */
  NOT_FOUND: { code: 'LBP_NOT_FOUND', status: 404 },
  /** A manifest given to render or check cannot be parsed. */
  MANIFEST_INVALID: { code: 'LBP_MANIFEST_INVALID', status: 400 },
  /** An input file or stream given to the CLI is larger than its limit. */
  INPUT_TOO_LARGE: { code: 'LBP_INPUT_TOO_LARGE', status: 413 },
  /** A command-line flag is unknown, missing or malformed. */
  USAGE: { code: 'LBP_USAGE', status: 400 },
  /** A server cannot listen on its address and port. */
  LISTEN: { code: 'LBP_LISTEN', status: 500 },
  /** Certificate material cannot be generated, read or parsed. */
  CERTIFICATE: { code: 'LBP_CERTIFICATE', status: 500 },
  /** An environment variable the process reads (LOG_LEVEL) has a value it does not accept. */
  ENVIRONMENT: { code: 'LBP_ENVIRONMENT', status: 500 },
  /** A policy asks for something a MutatingAdmissionPolicy cannot do exactly as the webhook does (export). */
  ADMISSION_POLICY_UNSUPPORTED: { code: 'LBP_ADMISSION_POLICY_UNSUPPORTED', status: 400 },
  /** The Kubernetes API refused or failed a request (audit). */
  KUBERNETES_API: { code: 'LBP_KUBERNETES_API', status: 502 },
  /** The client closed the connection before its answer; counted apart, never as a refusal. */
  CLIENT_GONE: { code: 'LBP_CLIENT_GONE', status: 400 },
  /** Anything not foreseen; a bug if it ever shows. */
  INTERNAL: { code: 'LBP_INTERNAL', status: 500 },
} as const;

/** ErrorKind is one entry of the ErrorCode catalogue: a stable code and an HTTP status. */
export interface ErrorKind {
  readonly code: string;
  readonly status: number;
}

/** WebhookError is an error with a stable code, an HTTP status and optional detail lines. */
export class WebhookError extends Error {
  /** code is the stable catalogue code, e.g. LBP_POLICY_INVALID. */
  readonly code: string;
  /** status is the HTTP status this error maps to at the edge. */
  readonly status: number;
  /** details are extra lines (e.g. every policy error with its path and line). */
  readonly details: readonly string[];

  constructor(kind: ErrorKind, message: string, options: { cause?: unknown; details?: readonly string[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WebhookError';
    this.code = kind.code;
    this.status = kind.status;
    this.details = options.details ?? [];
  }
}

/** isWebhookError tells whether a caught value is a WebhookError. */
export function isWebhookError(err: unknown): err is WebhookError {
  return err instanceof WebhookError;
}

/** describeError renders any caught value as one message line, with its detail lines after it. */
export function describeError(err: unknown): string {
  if (isWebhookError(err)) {
    return [err.message, ...err.details.map((d) => `  ${d}`)].join('\n');
  }
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * systemMessage renders a caught value as one line; a Node system error loses the path and system
 * call it ends with (`ENOENT: no such file or directory, open '/x'` becomes `ENOENT: no such file
 * or directory`), since the caller names the file first.
 */
export function systemMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const line = message.split('\n')[0] ?? message;
  return /^E[A-Z]+: /.test(line) ? line.replace(/, \w+(?: '[^']*'(?: -> '[^']*')?)?$/, '') : line;
}

/** yamlMessage trims a yaml library error to its first line without the position, which callers print as file:line. */
export function yamlMessage(message: string): string {
  // The parser reports a stack overflow on absurd nesting as the engine's own words.
  if (/Maximum call stack size exceeded|Stack overflow/.test(message)) return 'nested too deeply';
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}
