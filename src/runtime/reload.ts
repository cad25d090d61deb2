/**
 * Live reloading for `serve`: the policy and the serving certificate are swapped in place when
 * their files change; a file that does not validate is refused, logged with every error, counted,
 * and the last good one keeps serving.
 */
import type { Logger } from 'pino';
import { describeError, ErrorCode, WebhookError } from '../errors.js';
import type { WebhookMetrics } from '../metrics/metrics.js';
import { parsePolicy } from '../policy/parse.js';
import type { Policy } from '../policy/schema.js';
import { checkTlsMaterial, type TlsMaterial } from '../tls/material.js';

/** PolicySource holds the policy in force and replaces it when a new one validates. */
export class PolicySource {
  private policy: Policy;

  constructor(
    initial: Policy,
    private readonly path: string,
    private readonly logger: Logger,
    private readonly metrics: WebhookMetrics,
  ) {
    this.policy = initial;
  }

  /** current returns the policy in force. */
  current(): Policy {
    return this.policy;
  }

  /** unreadable records a policy file that cannot be read: a failed reload; the policy in force stays. */
  unreadable(err: unknown): void {
    this.metrics.policyReload('failure');
    this.logger.error({ code: ErrorCode.POLICY_INVALID.code, err: describeError(err) }, 'cannot read the policy file; the last good policy keeps serving');
  }

  /** update validates new policy text; it takes effect only when valid, and returns whether it did. */
  update(text: string): boolean {
    try {
      this.policy = parsePolicy(text, this.path);
    } catch (err: unknown) {
      this.metrics.policyReload('failure');
      this.logger.error({ code: ErrorCode.POLICY_INVALID.code, problems: err instanceof WebhookError ? err.details : [describeError(err)] }, 'policy refused; the last good policy keeps serving');
      return false;
    }
    this.metrics.policyReload('success');
    this.logger.info({ provider: this.policy.provider, mode: this.policy.mode, probe: this.policy.probe }, 'policy reloaded');
    return true;
  }
}

/** CertificateSource swaps the serving certificate of a TLS server in place when a new pair validates. */
export class CertificateSource {
  constructor(
    private readonly source: string,
    private readonly apply: (material: TlsMaterial) => void,
    private readonly logger: Logger,
    private readonly metrics: WebhookMetrics,
  ) {}

  /** unreadable records a certificate or key file that cannot be read: a failed reload; the certificate in use stays. */
  unreadable(err: unknown): void {
    this.metrics.certificateReload('failure');
    this.logger.error({ code: ErrorCode.CERTIFICATE.code, err: describeError(err) }, 'cannot read the certificate or key; the certificate in use keeps serving');
  }

  /** update checks a certificate and key; it applies them only when they parse and belong together, and returns whether it did. */
  update(cert: string, key: string): boolean {
    let material: TlsMaterial;
    try {
      material = checkTlsMaterial(cert, key, this.source);
    } catch (err: unknown) {
      this.metrics.certificateReload('failure');
      this.logger.error({ code: ErrorCode.CERTIFICATE.code, err: describeError(err) }, 'certificate refused; the certificate in use keeps serving');
      return false;
    }
    this.apply(material);
    this.metrics.certificateReload('success');
    this.metrics.certificateInUse(material.notAfter);
    this.logger.info({ notAfter: material.notAfter }, 'certificate reloaded');
    return true;
  }
}
