/**
 * namespaceSelectorOf: the namespaceSelector of a MutatingWebhookConfiguration as the label selector
 * string that audit --as-webhook lists namespaces with. The selectors of both install modes are the
 * chart's and the overlays' own (test/e2e/audit.test.ts runs them against a real API server).
 */
import { describe, expect, it } from 'vitest';
import { lastWritten, namespaceSelectorOf, objectSelectorOf, WEBHOOK_ENTRY } from '../../src/audit/scope.js';

const configuration = (...webhooks: Record<string, unknown>[]) => ({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', webhooks });

describe('namespaceSelectorOf', () => {
  it.each([
    {
      name: 'the opt-in registration selects the labelled namespaces but the webhook own',
      selector: { matchLabels: { 'lb-probe-webhook/enabled': 'true' }, matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['lb-probe-webhook'] }] },
      expected: 'lb-probe-webhook/enabled=true,kubernetes.io/metadata.name notin (lb-probe-webhook)',
    },
    {
      name: 'the cluster-wide registration selects all but the system namespaces, its own and those labelled false',
      selector: {
        matchExpressions: [
          { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['kube-system', 'kube-node-lease', 'lb-probe-webhook'] },
          { key: 'lb-probe-webhook/enabled', operator: 'NotIn', values: ['false'] },
        ],
      },
      expected: 'kubernetes.io/metadata.name notin (kube-system,kube-node-lease,lb-probe-webhook),lb-probe-webhook/enabled notin (false)',
    },
    { name: 'In, Exists and DoesNotExist become their selector words', selector: { matchExpressions: [{ key: 'a', operator: 'In', values: ['x', 'y'] }, { key: 'b', operator: 'Exists' }, { key: 'c', operator: 'DoesNotExist' }] }, expected: 'a in (x,y),b,!c' },
    { name: 'an empty selector selects every namespace', selector: {}, expected: '' },
    { name: 'no selector selects every namespace', selector: undefined, expected: '' },
  ])('$name', ({ selector, expected }) => {
    expect(namespaceSelectorOf(configuration({ name: WEBHOOK_ENTRY, namespaceSelector: selector }), 'lb-probe-webhook')).toBe(expected);
  });

  it('reads the entry named probes.lb-probe-webhook.io when the configuration has several', () => {
    const config = configuration({ name: 'other.example.com', namespaceSelector: { matchLabels: { other: 'yes' } } }, { name: WEBHOOK_ENTRY, namespaceSelector: { matchLabels: { ours: 'yes' } } });
    expect(namespaceSelectorOf(config, 'mixed')).toBe('ours=yes');
  });

  it.each([
    { name: 'a configuration without our entry among several', config: configuration({ name: 'a.example.com' }, { name: 'b.example.com' }), message: 'MutatingWebhookConfiguration x: has no webhook named probes.lb-probe-webhook.io' },
    { name: 'an unknown operator', config: configuration({ name: WEBHOOK_ENTRY, namespaceSelector: { matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] } }), message: 'namespaceSelector operator "Gt" is not In, NotIn, Exists or DoesNotExist' },
    { name: 'a value a label selector cannot carry', config: configuration({ name: WEBHOOK_ENTRY, namespaceSelector: { matchLabels: { a: 'x,y' } } }), message: 'namespaceSelector value "x,y" is not a label key or value' },
  ])('refuses $name, naming the configuration', ({ config, message }) => {
    expect(() => namespaceSelectorOf(config, 'x')).toThrow(message);
  });
});

describe('objectSelectorOf', () => {
  const selector = (objectSelector: unknown) => objectSelectorOf(configuration({ name: WEBHOOK_ENTRY, objectSelector }), 'x');

  it.each([
    { name: 'no objectSelector selects every object', objectSelector: undefined, labels: {}, expected: true },
    { name: 'matchLabels needs each label with its value', objectSelector: { matchLabels: { app: 'gw' } }, labels: { app: 'gw', other: 'y' }, expected: true },
    { name: 'matchLabels refuses another value', objectSelector: { matchLabels: { app: 'gw' } }, labels: { app: 'web' }, expected: false },
    { name: 'In needs the label with one of the values', objectSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['edge', 'dmz'] }] }, labels: { tier: 'dmz' }, expected: true },
    { name: 'In refuses an object without the label', objectSelector: { matchExpressions: [{ key: 'tier', operator: 'In', values: ['edge'] }] }, labels: {}, expected: false },
    { name: 'NotIn selects an object without the label, as the API server does', objectSelector: { matchExpressions: [{ key: 'skip', operator: 'NotIn', values: ['true'] }] }, labels: {}, expected: true },
    { name: 'NotIn refuses one of the values', objectSelector: { matchExpressions: [{ key: 'skip', operator: 'NotIn', values: ['true'] }] }, labels: { skip: 'true' }, expected: false },
    { name: 'Exists needs the label', objectSelector: { matchExpressions: [{ key: 'a', operator: 'Exists' }] }, labels: { a: '' }, expected: true },
    { name: 'DoesNotExist refuses the label', objectSelector: { matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, labels: { a: 'x' }, expected: false },
  ])('$name', ({ objectSelector, labels, expected }) => {
    expect(selector(objectSelector)(labels as Record<string, string>)).toBe(expected);
  });

  it('refuses an unknown operator, naming the configuration', () => {
    expect(() => selector({ matchExpressions: [{ key: 'a', operator: 'Gt', values: ['1'] }] })).toThrow('MutatingWebhookConfiguration x: objectSelector operator "Gt" is not In, NotIn, Exists or DoesNotExist');
  });
});

describe('lastWritten', () => {
  it.each([
    {
      name: 'is the latest managedFields time, whoever wrote it',
      metadata: {
        creationTimestamp: '2026-11-01T00:00:00Z',
        managedFields: [
          { manager: 'kubectl', time: '2026-11-02T10:00:00Z' },
          { manager: 'istio.io/gateway-controller', time: '2026-11-03T08:30:00Z' },
        ],
      },
      expected: Date.parse('2026-11-03T08:30:00Z'),
    },
    { name: 'is the creationTimestamp without managedFields', metadata: { creationTimestamp: '2026-11-01T00:00:00Z' }, expected: Date.parse('2026-11-01T00:00:00Z') },
    { name: 'is unknown without either', metadata: {}, expected: undefined },
  ])('$name', ({ metadata, expected }) => {
    expect(lastWritten({ apiVersion: 'v1', kind: 'Service', metadata })).toBe(expected);
  });
});
