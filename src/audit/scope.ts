/**
 * Where a webhook registration acts: the namespaceSelector of the project's entry in a
 * MutatingWebhookConfiguration, as the label selector string the API server's list calls take. audit
 * --as-webhook lists only those namespaces, so the heal job fixes exactly what the webhook would have
 * changed, where it would have. Pure.
 */
import { arrayAt, isObject, objectAt, stringAt, stringMap, type JsonObject } from '../core/json.js';
import { ErrorCode, WebhookError } from '../errors.js';

/** WEBHOOK_ENTRY is the name of the project's entry in its MutatingWebhookConfiguration (the chart's and the kustomize base's). */
export const WEBHOOK_ENTRY = 'probes.lb-probe-webhook.io';

function scopeError(configuration: string, message: string): WebhookError {
  return new WebhookError(ErrorCode.KUBERNETES_API, `MutatingWebhookConfiguration ${configuration}: ${message}`);
}

/** LABEL_VALUE is what a label selector string can carry unquoted (Kubernetes label keys and values). */
const LABEL_TOKEN = /^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$/;

function token(configuration: string, value: string, what: string): string {
  if (!LABEL_TOKEN.test(value)) throw scopeError(configuration, `namespaceSelector ${what} ${JSON.stringify(value)} is not a label key or value`);
  return value;
}

/** webhookEntry is the project's entry of a configuration: the one named WEBHOOK_ENTRY, or the only one. */
function webhookEntry(configuration: JsonObject, name: string): JsonObject {
  const webhooks = arrayAt(configuration, 'webhooks').filter(isObject);
  const entry = webhooks.find((w) => stringAt(w, 'name') === WEBHOOK_ENTRY) ?? (webhooks.length === 1 ? webhooks[0] : undefined);
  if (entry === undefined) throw scopeError(name, `has no webhook named ${WEBHOOK_ENTRY}`);
  return entry;
}

/**
 * namespaceSelectorOf returns the label selector string of the project's webhook entry's
 * namespaceSelector ('' selects every namespace, as an absent or empty selector does). The entry is
 * the one named WEBHOOK_ENTRY, or the only one. It throws LBP_KUBERNETES_API naming the configuration
 * when there is no such entry or the selector uses an operator a label selector cannot express.
 */
export function namespaceSelectorOf(configuration: JsonObject, name: string): string {
  const selector = objectAt(webhookEntry(configuration, name), 'namespaceSelector');
  const terms = Object.entries(stringMap(selector?.['matchLabels'])).map(([k, v]) => `${token(name, k, 'key')}=${token(name, v, 'value')}`);
  for (const expression of arrayAt(selector, 'matchExpressions')) {
    const key = token(name, stringAt(expression, 'key') ?? '', 'key');
    const values = arrayAt(expression, 'values').map((v) => token(name, typeof v === 'string' ? v : String(v), 'value'));
    switch (stringAt(expression, 'operator')) {
      case 'In':
        terms.push(`${key} in (${values.join(',')})`);
        break;
      case 'NotIn':
        terms.push(`${key} notin (${values.join(',')})`);
        break;
      case 'Exists':
        terms.push(key);
        break;
      case 'DoesNotExist':
        terms.push(`!${key}`);
        break;
      default:
        throw scopeError(name, `namespaceSelector operator ${JSON.stringify(stringAt(expression, 'operator'))} is not In, NotIn, Exists or DoesNotExist`);
    }
  }
  return terms.join(',');
}

/**
 * objectSelectorOf returns the project's entry's objectSelector as a test of an object's labels,
 * with the API server's LabelSelector meaning (NotIn and DoesNotExist also match an object without
 * the label). It throws as namespaceSelectorOf does for an operator it does not know.
 */
export function objectSelectorOf(configuration: JsonObject, name: string): (labels: Readonly<Record<string, string>>) => boolean {
  const selector = objectAt(webhookEntry(configuration, name), 'objectSelector');
  const matchLabels = Object.entries(stringMap(selector?.['matchLabels']));
  const expressions = arrayAt(selector, 'matchExpressions').map((expression) => {
    const key = stringAt(expression, 'key') ?? '';
    const values = arrayAt(expression, 'values').map(String);
    const operator = stringAt(expression, 'operator');
    switch (operator) {
      case 'In':
        return (labels: Readonly<Record<string, string>>) => key in labels && values.includes(labels[key] as string);
      case 'NotIn':
        return (labels: Readonly<Record<string, string>>) => !(key in labels) || !values.includes(labels[key] as string);
      case 'Exists':
        return (labels: Readonly<Record<string, string>>) => key in labels;
      case 'DoesNotExist':
        return (labels: Readonly<Record<string, string>>) => !(key in labels);
      default:
        throw scopeError(name, `objectSelector operator ${JSON.stringify(operator)} is not In, NotIn, Exists or DoesNotExist`);
    }
  });
  return (labels) => matchLabels.every(([k, v]) => labels[k] === v) && expressions.every((matches) => matches(labels));
}

/**
 * lastWritten is when an object was last written, in milliseconds: the latest time of its
 * managedFields (each manager's last write), else its creationTimestamp; undefined when it has
 * neither. Both have whole seconds.
 */
export function lastWritten(object: JsonObject): number | undefined {
  const metadata = objectAt(object, 'metadata');
  const times = arrayAt(metadata, 'managedFields')
    .map((entry) => Date.parse(stringAt(entry, 'time') ?? ''))
    .filter((t) => !Number.isNaN(t));
  if (times.length > 0) return Math.max(...times);
  const created = Date.parse(stringAt(metadata, 'creationTimestamp') ?? '');
  return Number.isNaN(created) ? undefined : created;
}
