/**
 * The one module that reads the environment. Everything else receives these values.
 */
import { ErrorCode, WebhookError } from './errors.js';

/** LOG_LEVELS are the pino levels LOG_LEVEL may name. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** EnvironmentConfig is what the process takes from its environment. */
export interface EnvironmentConfig {
  /** logLevel is LOG_LEVEL (default info). */
  readonly logLevel: (typeof LOG_LEVELS)[number];
}

/** readEnvironment reads the environment once; an invalid LOG_LEVEL is LBP_ENVIRONMENT, naming the allowed values. */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): EnvironmentConfig {
  const level = env['LOG_LEVEL'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new WebhookError(ErrorCode.ENVIRONMENT, `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  }
  return { logLevel: level as EnvironmentConfig['logLevel'] };
}

/** KubeEnvironment is where a client would find cluster credentials, as the environment says. */
export interface KubeEnvironment {
  /** kubeconfig is KUBECONFIG as set (a list of paths joined by `:`), if set and not empty. */
  readonly kubeconfig: string | undefined;
  /** home is the home directory (HOME), where `.kube/config` is looked for. */
  readonly home: string | undefined;
  /** inCluster tells whether the process runs in a pod (KUBERNETES_SERVICE_HOST and _PORT set). */
  readonly inCluster: boolean;
}

/** kubeEnvironment reads where cluster credentials would come from, for audit's "no kubeconfig found" message. */
export function kubeEnvironment(env: NodeJS.ProcessEnv = process.env): KubeEnvironment {
  return {
    kubeconfig: env['KUBECONFIG'] || undefined,
    home: env['HOME'] || env['USERPROFILE'] || undefined,
    inCluster: Boolean(env['KUBERNETES_SERVICE_HOST'] && env['KUBERNETES_SERVICE_PORT']),
  };
}
