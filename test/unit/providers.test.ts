import { describe, expect, it } from 'vitest';
import type { ProbeIntent, Readiness } from '../../src/core/probe.js';
import { serviceTarget, type ServicePort } from '../../src/core/target.js';
import { PROVIDERS, PROVIDER_NAMES, providerFor } from '../../src/providers/index.js';
import { fillTemplate } from '../../src/providers/custom.js';
import type { ProviderResult } from '../../src/providers/provider.js';
import type { JsonObject } from '../../src/core/json.js';
import { fixture, policy } from '../support/fixtures.js';

/** STATUS_PORT is Istio's status port as the fixtures have it and a provider sees it (serviceTarget's view): port 15021, named status-port. */
const STATUS_PORT: ServicePort = { name: 'status-port', port: 15021, protocol: 'TCP', appProtocol: 'tcp', targetPort: undefined };

/** onPort is a readiness check on a Service port, written out as the decision hands it to a provider: the reference the policy used, the port, the path. */
function onPort(port: ServicePort, ref: string | number = port.name ?? port.port, path = '/healthz/ready'): Readiness {
  return { check: { ref, port, path } };
}

/** notAPort is a readiness endpoint the Service has no port for, written out as the decision hands it to a provider. */
function notAPort(ref: string | number): Readiness {
  return { missing: `readiness port ${ref} is not a port of the Service`, endpoint: { port: ref, path: '/healthz/ready' } };
}

/** annotate runs the policy's provider, bound to the policy's settings, on the Service with the readiness given (the status port by default) and no profile. */
function annotate(
  provider: string,
  intent: ProbeIntent,
  object: JsonObject = fixture('istio-gateway-service.yaml'),
  settings: Record<string, unknown> = {},
  readiness: Readiness = onPort(STATUS_PORT),
  profile?: string,
): ProviderResult {
  return policy({ provider, ...settings }).boundProvider.annotate({ target: serviceTarget(object), intent, readiness, profile });
}

function merged(result: ProviderResult): Record<string, string> {
  return Object.assign({}, ...result.groups.map((g) => g.annotations)) as Record<string, string>;
}

describe('the provider registry', () => {
  it('lists the ten providers in order, each under its own name.', () => {
    expect(PROVIDER_NAMES).toEqual(['azure', 'aws', 'gcp', 'digitalocean', 'hetzner', 'linode', 'oci', 'alibaba', 'ibm', 'custom']);
    for (const name of PROVIDER_NAMES) expect(PROVIDERS[name]?.name).toBe(name);
  });

  it('declares the policy sections of the providers that have settings: azure, aws and custom.', () => {
    expect(PROVIDER_NAMES.map((name) => PROVIDERS[name]?.settingsKey).filter((key) => key !== undefined)).toEqual(['azure', 'aws', 'custom']);
  });

  it('refuses an unknown name.', () => {
    expect(() => providerFor('openstack')).toThrow('unknown provider openstack');
  });
});

describe('aws', () => {
  const P = 'service.beta.kubernetes.io/aws-load-balancer-';
  const status = (port: string) => ({ [`${P}healthcheck-protocol`]: 'http', [`${P}healthcheck-port`]: port, [`${P}healthcheck-path`]: '/healthz/ready' });
  const NOT_OWNED = `AWS: for a readiness check, set loadBalancerClass service.k8s.aws/nlb, or ${P}type: external with ${P}nlb-target-type, so that the AWS Load Balancer Controller reconciles the Service; the check stays TCP`;

  function nlb(annotations: Record<string, string> = {}, edit: (spec: JsonObject) => void = () => {}): JsonObject {
    const object = fixture('service-aws-nlb.yaml');
    const metadata = object['metadata'] as JsonObject;
    metadata['annotations'] = { ...(metadata['annotations'] as Record<string, string>), ...annotations };
    edit(object['spec'] as JsonObject);
    return object;
  }

  function istio(annotations: Record<string, string>): JsonObject {
    const object = fixture('istio-gateway-service.yaml');
    (object['metadata'] as JsonObject)['annotations'] = annotations;
    return object;
  }

  function statusPort(spec: JsonObject): JsonObject {
    const port = (spec['ports'] as JsonObject[]).find((p) => p['port'] === 15021);
    if (port === undefined) throw new Error('no port 15021');
    return port;
  }

  it('A tcp probe needs nothing: the NLB default is TCP on the traffic port.', () => {
    expect(annotate('aws', 'tcp', nlb())).toEqual({ groups: [], warnings: [], notes: ['AWS: NLB health checks default to TCP on the traffic port; nothing to change'] });
  });

  it('A readiness probe on a Service the Load Balancer Controller owns sets protocol, port name and path.', () => {
    const result = annotate('aws', 'readiness', nlb());
    expect(result.groups).toEqual([{ annotations: status('status-port'), reason: 'AWS checks the instance targets with GET :status-port/healthz/ready' }]);
    expect(result.warnings).toEqual([]);
  });

  it('A readiness port given by number is written as that Service port’s name, which the controller maps to its nodePort.', () => {
    expect(merged(annotate('aws', 'readiness', nlb(), {}, onPort(STATUS_PORT, 15021)))).toEqual(status('status-port'));
  });

  it('With ip targets from the nlb-target-type annotation the port name is written too, and the reason says ip.', () => {
    const result = annotate('aws', 'readiness', nlb({ [`${P}nlb-target-type`]: 'ip' }));
    expect(result.groups).toEqual([{ annotations: status('status-port'), reason: 'AWS checks the ip targets with GET :status-port/healthz/ready' }]);
  });

  it('With ip targets from the policy’s aws.defaultTargetType and no annotation, the targets are ip.', () => {
    expect(annotate('aws', 'readiness', nlb(), { aws: { defaultTargetType: 'ip' } }).groups[0]?.reason).toBe('AWS checks the ip targets with GET :status-port/healthz/ready');
  });

  it('The nlb-target-type annotation wins over aws.defaultTargetType, and any value but ip means instance.', () => {
    expect(annotate('aws', 'readiness', nlb({ [`${P}nlb-target-type`]: 'instance' }), { aws: { defaultTargetType: 'ip' } }).groups[0]?.reason).toBe(
      'AWS checks the instance targets with GET :status-port/healthz/ready',
    );
    expect(annotate('aws', 'readiness', nlb({ [`${P}nlb-target-type`]: 'IP' }), { aws: { defaultTargetType: 'ip' } }).groups[0]?.reason).toBe(
      'AWS checks the instance targets with GET :status-port/healthz/ready',
    );
  });

  it('With ip targets and a status port whose targetPort is a name, nothing is written and the warning says what to do.', () => {
    const result = annotate('aws', 'readiness', nlb({ [`${P}nlb-target-type`]: 'ip' }, (spec) => (statusPort(spec)['targetPort'] = 'status')), {}, onPort({ ...STATUS_PORT, targetPort: 'status' }));
    expect(result.groups).toEqual([]);
    expect(result.warnings).toEqual([
      `AWS: give Service port 15021 (status-port) a numeric targetPort, or set ${P}healthcheck-port to the container port number yourself: ` +
        "with ip targets the Load Balancer Controller refuses the whole Service when the health check port's targetPort is a name (status); the check stays TCP",
    ]);
  });

  it('With instance targets a named targetPort does not matter: the port name is written.', () => {
    expect(merged(annotate('aws', 'readiness', nlb({}, (spec) => (statusPort(spec)['targetPort'] = 'status')), {}, onPort({ ...STATUS_PORT, targetPort: 'status' })))).toEqual(status('status-port'));
  });

  it('An unnamed readiness port with instance targets is left alone with a warning, since a number would be a raw node port.', () => {
    const result = annotate('aws', 'readiness', nlb({}, (spec) => delete statusPort(spec)['name']), {}, onPort({ ...STATUS_PORT, name: undefined }, 15021));
    expect(result.groups).toEqual([]);
    expect(result.warnings).toEqual([
      'AWS: name Service port 15021 (for example status-port): for instance targets the Load Balancer Controller reads a health check port number ' +
        "as a raw node port, not that port's nodePort; the check stays TCP",
    ]);
  });

  it('An unnamed readiness port with ip targets is written as its numeric targetPort, which the controller uses on the pods as it is.', () => {
    const object = nlb({ [`${P}nlb-target-type`]: 'ip' }, (spec) => {
      delete statusPort(spec)['name'];
      statusPort(spec)['targetPort'] = 15020;
    });
    expect(merged(annotate('aws', 'readiness', object, {}, onPort({ ...STATUS_PORT, name: undefined, targetPort: 15020 }, 15021)))).toEqual(status('15020'));
  });

  it('An unnamed readiness port with ip targets and no targetPort is written as its port, the targetPort the API server defaults to.', () => {
    const object = nlb({ [`${P}type`]: 'nlb-ip' }, (spec) => delete statusPort(spec)['name']);
    expect(merged(annotate('aws', 'readiness', object, {}, onPort({ ...STATUS_PORT, name: undefined }, 15021)))).toEqual(status('15021'));
  });

  it.each([
    ['aws-load-balancer-type nlb-ip', { [`${P}type`]: 'nlb-ip' }, 'ip'],
    ['aws-load-balancer-type external with target type ip', { [`${P}type`]: 'external', [`${P}nlb-target-type`]: 'ip' }, 'ip'],
    ['aws-load-balancer-type external with target type instance', { [`${P}type`]: 'external', [`${P}nlb-target-type`]: 'instance' }, 'instance'],
  ] as const)('%s hands a Service without a loadBalancerClass to the controller, with %s targets.', (_name, annotations, targetType) => {
    expect(annotate('aws', 'readiness', istio(annotations)).groups).toEqual([
      { annotations: status('status-port'), reason: `AWS checks the ${targetType} targets with GET :status-port/healthz/ready` },
    ]);
  });

  it.each([
    ['the legacy in-tree provider (no class, no type)', istio({})],
    ['aws-load-balancer-type external without a target type', istio({ [`${P}type`]: 'external' })],
    ['aws-load-balancer-type nlb (the in-tree NLB)', istio({ [`${P}type`]: 'nlb' })],
  ] as const)('A readiness probe on %s is refused with a warning, since the controller does not reconcile it.', (_name, object) => {
    expect(annotate('aws', 'readiness', object)).toEqual({ groups: [], warnings: [NOT_OWNED], notes: [] });
  });

  it('Another loadBalancerClass wins over aws-load-balancer-type nlb-ip: the controller does not reconcile it.', () => {
    const object = nlb({ [`${P}type`]: 'nlb-ip' }, (spec) => (spec['loadBalancerClass'] = 'example.com/lb'));
    expect(annotate('aws', 'readiness', object)).toEqual({ groups: [], warnings: [NOT_OWNED], notes: [] });
  });

  it('A readiness port missing from the Service is refused with a warning.', () => {
    const result = annotate('aws', 'readiness', nlb(), {}, notAPort('health'));
    expect(result.groups).toEqual([]);
    expect(result.warnings).toEqual(['AWS: readiness port health is not a port of the Service, so the check stays TCP']);
  });

  it('externalTrafficPolicy Local with instance targets is left to kube-proxy’s health check, with a note.', () => {
    expect(annotate('aws', 'readiness', nlb({}, (spec) => (spec['externalTrafficPolicy'] = 'Local')))).toEqual({
      groups: [],
      warnings: [],
      notes: ["AWS: externalTrafficPolicy Local with instance targets is checked on kube-proxy's health check node port; nothing to change"],
    });
  });

  it('externalTrafficPolicy Local with ip targets still gets the readiness check, since the controller checks the pods.', () => {
    const object = nlb({ [`${P}nlb-target-type`]: 'ip' }, (spec) => (spec['externalTrafficPolicy'] = 'Local'));
    expect(merged(annotate('aws', 'readiness', object))).toEqual(status('status-port'));
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
    expect(merged(annotate('azure', 'tcp', object, { azure: { hideStatusPort: true } }, notAPort('status-port')))).toEqual({
      'service.beta.kubernetes.io/port_80_health-probe_protocol': 'tcp',
    });
  });
});

describe('probe kube-proxy (what AKS writes for its managed Istio gateways)', () => {
  it('Azure probes every affected port with GET /healthz on node port 10256, kube-proxy\'s health endpoint, one group per port.', () => {
    const result = annotate('azure', 'kube-proxy');
    expect(result.groups.map((g) => g.annotations)).toEqual(
      [80, 443].map((port) => ({
        [`service.beta.kubernetes.io/port_${port}_health-probe_protocol`]: 'http',
        [`service.beta.kubernetes.io/port_${port}_health-probe_port`]: '10256',
        [`service.beta.kubernetes.io/port_${port}_health-probe_request-path`]: '/healthz',
      })),
    );
    expect(result.groups[0]?.reason).toBe('Azure probes port 80 (http) with GET :10256/healthz (kube-proxy) instead of GET /');
    expect(result.warnings).toEqual([]);
  });

  it('Azure leaves an externalTrafficPolicy Local Service alone, as AKS documents: its probe already is kube-proxy\'s health check node port.', () => {
    expect(annotate('azure', 'kube-proxy', fixture('service-etp-local.yaml'))).toEqual({
      groups: [],
      warnings: [],
      notes: ["Azure: externalTrafficPolicy Local is probed on kube-proxy's health check node port; nothing to change"],
    });
  });

  it.each([
    ['aws', 'AWS'],
    ['hetzner', 'Hetzner'],
    ['linode', 'Linode'],
    ['alibaba', 'Alibaba'],
    ['ibm', 'IBM Cloud'],
  ] as const)('%s, where it means nothing, changes nothing and warns.', (provider, title) => {
    expect(annotate(provider, 'kube-proxy', fixture('service-aws-nlb.yaml'))).toEqual({
      groups: [],
      warnings: [`${title}: probe kube-proxy is for Azure (AKS probes kube-proxy's /healthz on node port 10256); the default probe stays`],
      notes: [],
    });
  });

  it.each([
    ['digitalocean', 'DigitalOcean'],
    ['oci', 'OCI'],
  ] as const)('%s, whose default check already is kube-proxy\'s, changes nothing and notes why.', (provider, title) => {
    expect(annotate(provider, 'kube-proxy')).toEqual({ groups: [], warnings: [], notes: [`${title}: the default check already is kube-proxy's /healthz; nothing to change`] });
  });

  it('custom applies its kube-proxy templates.', () => {
    const result = annotate('custom', 'kube-proxy', fixture('istio-gateway-service.yaml'), { custom: { 'kube-proxy': { perPort: { 'example.com/probe-{port}': 'http:10256/healthz' } } } });
    expect(merged(result)).toEqual({ 'example.com/probe-80': 'http:10256/healthz', 'example.com/probe-443': 'http:10256/healthz' });
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
    const result = annotate('digitalocean', 'readiness', fixture('istio-gateway-service.yaml'), {}, notAPort(9999));
    expect(result.groups).toEqual([]);
    expect(result.warnings).toEqual(['DigitalOcean: readiness port 9999 is not a port of the Service, so the default check stays']);
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
    ['hetzner', 'Hetzner', 'load-balancer.hetzner.cloud/health-check-port takes a node port, which is allocated after admission'],
    ['linode', 'Linode', 'linode-loadbalancer-check-path has no port key, so an HTTP check would hit the traffic port'],
    ['oci', 'OCI', 'only retries, interval and timeout can be annotated'],
    ['alibaba', 'Alibaba', 'alibaba-cloud-loadbalancer-health-check-connect-port takes a node port, which is allocated after admission'],
    ['ibm', 'IBM Cloud', 'ibm-load-balancer-cloud-provider-vpc-health-check-port takes a node port, which is allocated after admission'],
  ] as const)('%s cannot probe readiness and warns why, changing nothing.', (provider, title, why) => {
    expect(annotate(provider, 'readiness')).toEqual({
      groups: [],
      warnings: [`${title} cannot probe the readiness endpoint: ${why}; its default probe stays`],
      notes: [],
    });
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
