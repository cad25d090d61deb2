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

/** readEnvironment reads the environment once; an invalid LOG_LEVEL is an error naming the allowed values. */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): EnvironmentConfig {
  const level = env['LOG_LEVEL'] ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new WebhookError(ErrorCode.ENVIRONMENT, `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  }
  return { logLevel: level as EnvironmentConfig['logLevel'] };
}
