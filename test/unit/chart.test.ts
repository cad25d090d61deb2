import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { PROBE_SETTINGS } from '../../src/core/probe.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { AWS_DEFAULT_SETTINGS } from '../../src/providers/aws.js';
import { PROVIDER_NAMES } from '../../src/providers/index.js';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const chart = parse(read('charts/lb-probe-webhook/Chart.yaml')) as { version: string; appVersion: string };
const values = parse(read('charts/lb-probe-webhook/values.yaml')) as { policy: Record<string, unknown> };
const schema = JSON.parse(read('charts/lb-probe-webhook/values.schema.json')) as Record<string, any>;
const policySchema = schema.properties.policy;

describe('the Helm chart', () => {
  it("has the package's version as its version and appVersion.", () => {
    const pkg = JSON.parse(read('package.json')) as { version: string };
    expect({ version: chart.version, appVersion: chart.appVersion }).toEqual({ version: pkg.version, appVersion: pkg.version });
  });

  it('has a default policy that the webhook reads exactly as the kustomize base policy.', () => {
    const base = parsePolicy(read('manifests/base/policy.yaml'), 'manifests/base/policy.yaml');
    expect(parsePolicy(stringify(values.policy), 'values.yaml policy')).toEqual(base);
  });

  it("schema accepts exactly the webhook's providers and probes.", () => {
    expect(policySchema.properties.provider.enum).toEqual(PROVIDER_NAMES);
    expect(schema.definitions.probe.enum).toEqual(PROBE_SETTINGS);
  });

  it("schema's aws section names exactly the AWS provider's settings (alb among them), as booleans where the provider reads one.", () => {
    const aws = policySchema.properties.aws;
    expect(aws.additionalProperties).toBe(false);
    expect(Object.keys(aws.properties).sort()).toEqual(Object.keys(AWS_DEFAULT_SETTINGS).sort());
    for (const [key, value] of Object.entries(AWS_DEFAULT_SETTINGS)) if (typeof value === 'boolean') expect(aws.properties[key].type).toBe('boolean');
  });

  it('schema knows every top-level key of the default policy and refuses unknown ones.', () => {
    expect(policySchema.additionalProperties).toBe(false);
    for (const key of Object.keys(values.policy)) expect(Object.keys(policySchema.properties)).toContain(key);
  });
});
