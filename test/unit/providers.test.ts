import { describe, expect, it } from 'vitest';
import type { ProbeIntent } from '../../src/core/probe.js';
import { serviceTarget, type LoadBalancerTarget } from '../../src/core/target.js';
import { PROVIDERS, PROVIDER_NAMES, providerFor } from '../../src/providers/index.js';
import { fillTemplate } from '../../src/providers/custom.js';
import type { JsonObject } from '../../src/core/json.js';
import { fixture, policy } from '../helpers/fixtures.js';

function targetOf(object: JsonObject): LoadBalancerTarget {
  const target = serviceTarget(object);
  if (target === undefined) throw new Error('not a LoadBalancer Service');
  return target;
}

function annotate(provider: string, intent: ProbeIntent, object: JsonObject = fixture('istio-gateway-service.yaml'), settings: Record<string, unknown> = {}) {
  const p = policy({ provider, ...settings });
  return providerFor(provider).annotate({ target: targetOf(object), intent, readiness: p.readiness, policy: p });
}

function merged(result: ReturnType<typeof annotate>): Record<string, string> {
  return Object.assign({}, ...result.groups.map((g) => g.annotations)) as Record<string, string>;
}

describe('the provider registry', () => {
  it('lists the ten providers in order, each under its own name.', () => {
    expect(PROVIDER_NAMES).toEqual(['azure', 'aws', 'gcp', 'digitalocean', 'hetzner', 'linode', 'oci', 'alibaba', 'ibm', 'custom']);
    for (const name of PROVIDER_NAMES) expect(PROVIDERS[name]?.name).toBe(name);
  });

  it('refuses an unknown name.', () => {
    expect(() => providerFor('openstack')).toThrow('unknown provider openstack');
  });
});

describe('aws', () => {
  const P = 'service.beta.kubernetes.io/aws-load-balancer-';
  it('A tcp probe needs nothing: the NLB default is TCP on the traffic port.', () => {
    const result = annotate('aws', 'tcp', fixture('service-aws-nlb.yaml'));
    expect(result.groups).toEqual([]);
    expect(result.notes).toEqual(['AWS: NLB health checks default to TCP on the traffic port; nothing to change']);
  });

  it('A readiness probe on a Service the Load Balancer Controller owns sets protocol, port name and path.', () => {
    expect(merged(annotate('aws', 'readiness', fixture('service-aws-nlb.yaml')))).toEqual({
      [`${P}healthcheck-protocol`]: 'http',
      [`${P}healthcheck-port`]: 'status-port',
      [`${P}healthcheck-path`]: '/healthz/ready',
    });
  });

  it('aws-load-balancer-type: external also means the Load Balancer Controller owns the Service.', () => {
    const object = fixture('istio-gateway-service.yaml');
    (object['metadata'] as JsonObject)['annotations'] = { [`${P}type`]: 'external' };
    expect(annotate('aws', 'readiness', object).groups).toHaveLength(1);
  });

  it('A readiness probe on a legacy in-tree Service is refused with a warning, since it rejects port names.', () => {
    const result = annotate('aws', 'readiness');
    expect(result.groups).toEqual([]);
    expect(result.warnings).toEqual(['AWS: readiness check needs the AWS Load Balancer Controller (loadBalancerClass service.k8s.aws/nlb); the check stays TCP']);
  });

  it('A readiness port missing from the Service is refused with a warning.', () => {
    const result = annotate('aws', 'readiness', fixture('service-aws-nlb.yaml'), { readiness: { port: 'health' } });
    expect(result.groups).toEqual([]);
    expect(result.warnings).toEqual(['AWS: readiness port health is not a port of the Service, so the check stays TCP']);
  });

  it('externalTrafficPolicy Local is left to kube-proxy’s health check.', () => {
    const object = fixture('service-aws-nlb.yaml');
    (object['spec'] as JsonObject)['externalTrafficPolicy'] = 'Local';
    expect(annotate('aws', 'readiness', object).groups).toEqual([]);
  });
});

describe('azure', () => {
  it('Readiness with hideStatusPort probes the status port and keeps it off the load balancer.', () => {
    expect(merged(annotate('azure', 'readiness', fixture('kserve-inference-gateway.yaml', 1), { azure: { hideStatusPort: true } }))).toEqual({
      'service.beta.kubernetes.io/port_80_health-probe_protocol': 'http',
      'service.beta.kubernetes.io/port_80_health-probe_port': 'status-port',
      'service.beta.kubernetes.io/port_80_health-probe_request-path': '/healthz/ready',
      'service.beta.kubernetes.io/port_15021_no_lb_rule': 'true',
    });
  });

  it('hideStatusPort does nothing on a Service without a status port.', () => {
    const object = fixture('service-clusterip.yaml');
    (object['spec'] as JsonObject)['type'] = 'LoadBalancer';
    expect(merged(annotate('azure', 'tcp', object, { azure: { hideStatusPort: true } }))).toEqual({
      'service.beta.kubernetes.io/port_80_health-probe_protocol': 'tcp',
    });
  });
});

describe('digitalocean', () => {
  const P = 'service.beta.kubernetes.io/do-loadbalancer-';
  it('A tcp probe needs nothing.', () => {
    expect(annotate('digitalocean', 'tcp').groups).toEqual([]);
  });
  it('A readiness probe overrides the health check with the status port’s number.', () => {
    expect(merged(annotate('digitalocean', 'readiness'))).toEqual({
      [`${P}override-health-check`]: 'true',
      [`${P}healthcheck-protocol`]: 'http',
      [`${P}healthcheck-port`]: '15021',
      [`${P}healthcheck-path`]: '/healthz/ready',
    });
  });
  it('A readiness port missing from the Service is refused with a warning.', () => {
    const result = annotate('digitalocean', 'readiness', fixture('istio-gateway-service.yaml'), { readiness: { port: 9999 } });
    expect(result.groups).toEqual([]);
    expect(result.warnings).toHaveLength(1);
  });
});

describe('clouds whose default probe is already right', () => {
  it.each([
    ['gcp', 'tcp', 'GCP: L4 load balancers probe kube-proxy\'s /healthz and ignore appProtocol; nothing to change'],
    ['gcp', 'readiness', 'GCP: L4 load balancers probe kube-proxy\'s /healthz and ignore appProtocol; nothing to change'],
    ['hetzner', 'tcp', 'Hetzner: the default check is TCP to the node port; nothing to change'],
    ['linode', 'tcp', 'Linode: the default check is a TCP connection; nothing to change'],
    ['oci', 'tcp', "OCI: the default check is kube-proxy's /healthz; nothing to change"],
    ['alibaba', 'tcp', 'Alibaba: the default check is TCP; nothing to change'],
    ['ibm', 'tcp', 'IBM Cloud: the default check is TCP (HTTP for externalTrafficPolicy Local); nothing to change'],
  ] as const)('%s with probe %s changes nothing and notes why.', (provider, intent, note) => {
    const result = annotate(provider, intent);
    expect(result).toEqual({ groups: [], warnings: [], notes: [note] });
  });

  it.each([
    ['hetzner', /node port, which is allocated after admission/],
    ['linode', /no port key/],
    ['oci', /only retries, interval and timeout/],
    ['alibaba', /node port, which is allocated after admission/],
    ['ibm', /node port, which is allocated after admission/],
  ] as const)('%s cannot probe readiness and warns why.', (provider, why) => {
    const result = annotate(provider, 'readiness');
    expect(result.groups).toEqual([]);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toMatch(why);
  });
});

describe('custom', () => {
  const custom = {
    custom: {
      tcp: { perPort: { 'example.com/probe-{port}': 'tcp' }, perService: { 'example.com/probed-by': 'lb-probe-webhook' } },
      readiness: { perPort: { 'example.com/probe-{port}': 'http:{readinessPort}{readinessPath}' }, perService: {} },
    },
  };
  it('Per-port templates repeat for every affected port and per-Service templates apply once.', () => {
    const result = annotate('custom', 'tcp', fixture('istio-gateway-service.yaml'), custom);
    expect(result.groups.map((g) => g.annotations)).toEqual([
      { 'example.com/probe-80': 'tcp' },
      { 'example.com/probe-443': 'tcp' },
      { 'example.com/probed-by': 'lb-probe-webhook' },
    ]);
  });
  it('Readiness templates fill in the readiness port and path.', () => {
    expect(merged(annotate('custom', 'readiness', fixture('istio-gateway-service.yaml'), custom))).toEqual({
      'example.com/probe-80': 'http:status-port/healthz/ready',
      'example.com/probe-443': 'http:status-port/healthz/ready',
    });
  });
  it('An intent without templates changes nothing.', () => {
    const only = { custom: { tcp: custom.custom.tcp } };
    expect(annotate('custom', 'readiness', fixture('istio-gateway-service.yaml'), only)).toEqual({
      groups: [],
      warnings: [],
      notes: ['custom: no templates for probe readiness; nothing to change'],
    });
  });
  it('fillTemplate leaves unknown placeholders as they are.', () => {
    expect(fillTemplate('{port}-{other}', { port: '80' })).toBe('80-{other}');
  });
});
