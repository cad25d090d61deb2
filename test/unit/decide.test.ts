import { describe, expect, it } from 'vitest';
import fastJsonPatch from 'fast-json-patch';
import { ANNOTATIONS_SIZE_LIMIT, decide, handledKind, MAX_AFFECTED_PORTS, userMessages } from '../../src/decision/decide.js';
import type { JsonObject } from '../../src/core/json.js';
import { fixture, policy } from '../support/fixtures.js';

const AZ = 'service.beta.kubernetes.io/';
const azure = policy({ provider: 'azure' });

function withAnnotations(object: JsonObject, annotations: Record<string, string>): JsonObject {
  const metadata = object['metadata'] as JsonObject;
  metadata['annotations'] = { ...(metadata['annotations'] as object | undefined), ...annotations };
  return object;
}

describe('decide on Services', () => {
  it.each([
    {
      name: 'An Istio-generated Service on Azure with probe tcp gets a TCP probe on each http/https port, in a new annotations map.',
      object: fixture('istio-gateway-service.yaml'),
      policy: azure,
      patch: [
        {
          op: 'add',
          path: '/metadata/annotations',
          value: { [`${AZ}port_80_health-probe_protocol`]: 'tcp', [`${AZ}port_443_health-probe_protocol`]: 'tcp' },
        },
      ],
    },
    {
      name: 'An Istio-generated Service on Azure with probe readiness gets an HTTP probe on status-port /healthz/ready per port.',
      object: fixture('istio-gateway-service.yaml'),
      policy: policy({ provider: 'azure', probe: 'readiness' }),
      patch: [
        {
          op: 'add',
          path: '/metadata/annotations',
          value: {
            [`${AZ}port_80_health-probe_protocol`]: 'http',
            [`${AZ}port_80_health-probe_port`]: 'status-port',
            [`${AZ}port_80_health-probe_request-path`]: '/healthz/ready',
            [`${AZ}port_443_health-probe_protocol`]: 'http',
            [`${AZ}port_443_health-probe_port`]: 'status-port',
            [`${AZ}port_443_health-probe_request-path`]: '/healthz/ready',
          },
        },
      ],
    },
    {
      name: 'A readiness port given by number resolves against the Service and is written as that number.',
      object: fixture('kserve-inference-gateway.yaml', 1),
      policy: policy({ provider: 'azure', probe: 'readiness', readiness: { port: 15021, path: '/ready' } }),
      patch: [
        {
          op: 'add',
          path: '/metadata/annotations',
          value: {
            [`${AZ}port_80_health-probe_protocol`]: 'http',
            [`${AZ}port_80_health-probe_port`]: '15021',
            [`${AZ}port_80_health-probe_request-path`]: '/ready',
          },
        },
      ],
    },
    {
      name: 'azure.hideStatusPort adds no_lb_rule under the status port’s own number.',
      object: fixture('kserve-inference-gateway.yaml', 1),
      policy: policy({ provider: 'azure', azure: { hideStatusPort: true } }),
      patch: [
        {
          op: 'add',
          path: '/metadata/annotations',
          value: { [`${AZ}port_80_health-probe_protocol`]: 'tcp', [`${AZ}port_15021_no_lb_rule`]: 'true' },
        },
      ],
    },
    {
      name: 'A Service with annotations already gets one add per key, with "/" escaped as ~1.',
      object: fixture('service-aws-nlb.yaml'),
      policy: azure,
      patch: [{ op: 'add', path: `/metadata/annotations/service.beta.kubernetes.io~1port_80_health-probe_protocol`, value: 'tcp' }],
    },
    {
      name: 'An NLB Service with readiness port 15021 (a number) gets the status port’s name as its AWS health check port.',
      object: fixture('service-aws-nlb.yaml'),
      policy: policy({ provider: 'aws', probe: 'readiness', readiness: { port: 15021 } }),
      patch: [
        { op: 'add', path: `/metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-healthcheck-protocol`, value: 'http' },
        { op: 'add', path: `/metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-healthcheck-port`, value: 'status-port' },
        { op: 'add', path: `/metadata/annotations/service.beta.kubernetes.io~1aws-load-balancer-healthcheck-path`, value: '/healthz/ready' },
      ],
    },
    {
      name: 'A user-set probe for port 80 is kept whole; port 443 still gets its TCP probe.',
      object: fixture('service-user-probe.yaml'),
      policy: azure,
      patch: [{ op: 'add', path: `/metadata/annotations/service.beta.kubernetes.io~1port_443_health-probe_protocol`, value: 'tcp' }],
    },
    {
      name: 'With overwrite: true the user’s port 80 probe (appProtocol HTTP, upper case) is replaced and port 443 added.',
      object: fixture('service-user-probe.yaml'),
      policy: policy({ provider: 'azure', overwrite: true }),
      patch: [
        { op: 'replace', path: `/metadata/annotations/service.beta.kubernetes.io~1port_80_health-probe_protocol`, value: 'tcp' },
        { op: 'add', path: `/metadata/annotations/service.beta.kubernetes.io~1port_443_health-probe_protocol`, value: 'tcp' },
      ],
    },
  ])('$name', ({ object, policy: p, patch }) => {
    const decision = decide({ object, operation: 'CREATE', policy: p });
    expect(decision.outcome).toBe('patched');
    expect(decision.patch).toEqual(patch);
    expect(fastJsonPatch.applyPatch(structuredClone(object), fastJsonPatch.deepClone(decision.patch) as never).newDocument).toEqual(decision.object);
  });

  it.each([
    { name: 'A ClusterIP Service is skipped.', object: fixture('service-clusterip.yaml'), outcome: 'skipped', note: 'not a LoadBalancer Service' },
    { name: 'The istio/gateway chart Service (no appProtocol) is skipped.', object: fixture('istio-chart-service.yaml'), outcome: 'skipped', note: 'no TCP port with appProtocol http or https' },
    { name: 'An externalTrafficPolicy Local Service on Azure is left alone.', object: fixture('service-etp-local.yaml'), outcome: 'unchanged', note: "Azure: externalTrafficPolicy Local is probed on kube-proxy's health check node port; nothing to change" },
    { name: 'A ConfigMap is skipped.', object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }, outcome: 'skipped', note: 'v1 ConfigMap is not a Service or Gateway' },
    { name: 'A Service of another apiVersion is skipped.', object: { ...fixture('istio-gateway-service.yaml'), apiVersion: 'v2' }, outcome: 'skipped', note: 'v2 Service is not a Service or Gateway' },
  ])('$name', ({ object, outcome, note }) => {
    const decision = decide({ object, operation: 'CREATE', policy: azure });
    expect(decision.outcome).toBe(outcome);
    expect(decision.patch).toEqual([]);
    expect(decision.notes).toContain(note);
  });

  it.each(['DELETE', 'CONNECT'])('A %s is never mutated.', (operation) => {
    const decision = decide({ object: fixture('istio-gateway-service.yaml'), operation, policy: azure });
    expect(decision).toMatchObject({ outcome: 'skipped', patch: [] });
  });

  it('An UPDATE that dropped the probe annotations gets them back.', () => {
    const decision = decide({ object: fixture('istio-gateway-service.yaml'), operation: 'UPDATE', policy: azure });
    expect(decision.changes.map((c) => c.key)).toEqual([`${AZ}port_80_health-probe_protocol`, `${AZ}port_443_health-probe_protocol`]);
  });

  it('Applying a decision to its own result changes nothing (reinvocation-safe).', () => {
    for (const p of [azure, policy({ provider: 'azure', probe: 'readiness', azure: { hideStatusPort: true } })]) {
      const first = decide({ object: fixture('istio-gateway-service.yaml'), operation: 'CREATE', policy: p });
      const second = decide({ object: first.object, operation: 'UPDATE', policy: p });
      expect(second).toMatchObject({ outcome: 'unchanged', patch: [], changes: [] });
    }
  });

  it('With overwrite: true every replaced value is named in a warning.', () => {
    const decision = decide({ object: fixture('service-user-probe.yaml'), operation: 'CREATE', policy: policy({ provider: 'azure', overwrite: true }) });
    expect(decision.warnings).toEqual([`lb-probe-webhook: replaced ${AZ}port_80_health-probe_protocol="http" with "tcp" (overwrite: true)`]);
    expect(decision.changes.find((c) => c.key === `${AZ}port_80_health-probe_protocol`)?.previous).toBe('http');
  });

  it('Without overwrite, a kept user value is noted for the log but is no warning.', () => {
    const decision = decide({ object: fixture('service-user-probe.yaml'), operation: 'CREATE', policy: azure });
    expect(decision.warnings).toEqual([]);
    expect(decision.notes).toEqual([`kept ${AZ}port_80_health-probe_protocol="http" set on the object (overwrite: false)`]);
  });

  it('A readiness port that is not a port of the Service falls back to TCP with a warning.', () => {
    const p = policy({ provider: 'azure', probe: 'readiness', readiness: { port: 'health' } });
    const decision = decide({ object: fixture('istio-gateway-service.yaml'), operation: 'CREATE', policy: p });
    expect(decision.changes.map((c) => `${c.key}=${c.value}`)).toEqual([`${AZ}port_80_health-probe_protocol=tcp`, `${AZ}port_443_health-probe_protocol=tcp`]);
    expect(decision.warnings).toEqual(['lb-probe-webhook: Azure: readiness port health is not a port of the Service, so the probe stays TCP']);
  });

  it('An NLB Service with ip targets and a named status targetPort is left as it is, with a warning that says what to do.', () => {
    const object = withAnnotations(fixture('service-aws-nlb.yaml'), { [`${AZ}aws-load-balancer-nlb-target-type`]: 'ip' });
    const ports = (object['spec'] as JsonObject)['ports'] as JsonObject[];
    ports[0]!['targetPort'] = 'status';
    const decision = decide({ object, operation: 'CREATE', policy: policy({ provider: 'aws', probe: 'readiness' }) });
    expect(decision).toMatchObject({ outcome: 'unchanged', patch: [], changes: [] });
    expect(decision.warnings).toEqual([
      `lb-probe-webhook: AWS: give Service port 15021 (status-port) a numeric targetPort, or set ${AZ}aws-load-balancer-healthcheck-port to the container port number yourself: ` +
        "with ip targets the Load Balancer Controller refuses the whole Service when the health check port's targetPort is a name (status); the check stays TCP",
    ]);
  });

  it('A Gateway whose infrastructure annotations hand it to the AWS controller with ip targets gets the health check in that map.', () => {
    const object = fixture('gateway-plain.yaml');
    (object['spec'] as JsonObject)['infrastructure'] = {
      annotations: { [`${AZ}aws-load-balancer-type`]: 'external', [`${AZ}aws-load-balancer-nlb-target-type`]: 'ip' },
    };
    const decision = decide({ object, operation: 'CREATE', policy: policy({ provider: 'aws', probe: 'readiness' }) });
    expect(decision.patch).toEqual([
      { op: 'add', path: '/spec/infrastructure/annotations/service.beta.kubernetes.io~1aws-load-balancer-healthcheck-protocol', value: 'http' },
      { op: 'add', path: '/spec/infrastructure/annotations/service.beta.kubernetes.io~1aws-load-balancer-healthcheck-port', value: 'status-port' },
      { op: 'add', path: '/spec/infrastructure/annotations/service.beta.kubernetes.io~1aws-load-balancer-healthcheck-path', value: '/healthz/ready' },
    ]);
    expect(userMessages(decision)).toEqual(['lb-probe-webhook: AWS checks the ip targets with GET :status-port/healthz/ready (profile istio)']);
  });

  it('Mode warn makes no patch but says what would change.', () => {
    const decision = decide({ object: fixture('istio-gateway-service.yaml'), operation: 'CREATE', policy: policy({ provider: 'azure', mode: 'warn' }) });
    expect(decision).toMatchObject({ outcome: 'warned', patch: [] });
    expect(decision.object).toBeUndefined();
    expect(userMessages(decision)).toEqual([
      'lb-probe-webhook: would change (mode warn): Azure probes port 80 (http) over TCP instead of GET / (appProtocol http) (profile istio)',
      'lb-probe-webhook: would change (mode warn): Azure probes port 443 (https) over TCP instead of GET / (appProtocol https) (profile istio)',
    ]);
  });

  it('A patched decision tells the user each change and its reason.', () => {
    const decision = decide({ object: fixture('istio-gateway-service.yaml'), operation: 'CREATE', policy: azure });
    expect(userMessages(decision)).toEqual([
      'lb-probe-webhook: Azure probes port 80 (http) over TCP instead of GET / (appProtocol http) (profile istio)',
      'lb-probe-webhook: Azure probes port 443 (https) over TCP instead of GET / (appProtocol https) (profile istio)',
    ]);
  });
});

describe('decide picks the probe', () => {
  const service = () => fixture('istio-gateway-service.yaml');
  it.each([
    { name: 'The object annotation none leaves the object alone.', annotation: 'none', outcome: 'skipped', probe: 'none' },
    { name: 'The object annotation readiness wins over the policy’s tcp.', annotation: 'readiness', outcome: 'patched', probe: 'readiness' },
    { name: 'The object annotation tcp wins over a matching rule.', annotation: 'tcp', outcome: 'patched', probe: 'tcp', rules: [{ match: { namespaces: ['istio-*'] }, probe: 'none' }] },
    { name: 'The object annotation kube-proxy wins over the policy’s tcp.', annotation: 'kube-proxy', outcome: 'patched', probe: 'kube-proxy' },
  ])('$name', ({ annotation, outcome, probe, rules }) => {
    const object = withAnnotations(service(), { 'lb-probe-webhook/probe': annotation });
    const decision = decide({ object, operation: 'CREATE', policy: policy({ provider: 'azure', rules: rules ?? [] }) });
    expect(decision).toMatchObject({ outcome, probe });
  });

  it('probe kube-proxy on Azure writes kube-proxy\'s /healthz on node port 10256 for every affected port, whatever the profile.', () => {
    const decision = decide({ object: service(), operation: 'CREATE', policy: policy({ provider: 'azure', probe: 'kube-proxy' }) });
    expect(decision.changes.map((c) => `${c.key}=${c.value}`)).toEqual([
      'service.beta.kubernetes.io/port_80_health-probe_protocol=http',
      'service.beta.kubernetes.io/port_80_health-probe_port=10256',
      'service.beta.kubernetes.io/port_80_health-probe_request-path=/healthz',
      'service.beta.kubernetes.io/port_443_health-probe_protocol=http',
      'service.beta.kubernetes.io/port_443_health-probe_port=10256',
      'service.beta.kubernetes.io/port_443_health-probe_request-path=/healthz',
    ]);
  });

  it('An invalid object annotation is ignored with a warning, and the policy applies.', () => {
    const object = withAnnotations(service(), { 'lb-probe-webhook/probe': 'http' });
    const decision = decide({ object, operation: 'CREATE', policy: azure });
    expect(decision).toMatchObject({ outcome: 'patched', probe: 'tcp' });
    expect(decision.warnings).toEqual(['lb-probe-webhook: ignored lb-probe-webhook/probe="http"; use tcp, readiness, kube-proxy or none']);
  });

  it.each([
    { name: 'A namespace glob rule matches.', rules: [{ match: { namespaces: ['istio-*'] }, probe: 'readiness' }], probe: 'readiness' },
    { name: 'A non-matching namespace rule falls through to the policy probe.', rules: [{ match: { namespaces: ['kserve'] }, probe: 'readiness' }], probe: 'tcp' },
    { name: 'A ? glob matches one character only.', rules: [{ match: { namespaces: ['istio-ingres?'] }, probe: 'none' }], probe: 'none' },
    { name: 'A label rule matches the object’s labels.', rules: [{ match: { labels: { 'gateway.istio.io/managed': 'istio.io-gateway-controller' } }, probe: 'none' }], probe: 'none' },
    { name: 'A rule needs every label.', rules: [{ match: { labels: { 'gateway.istio.io/managed': 'istio.io-gateway-controller', team: 'a' } }, probe: 'none' }], probe: 'tcp' },
    { name: 'The first matching rule wins.', rules: [{ match: { namespaces: ['*'] }, probe: 'readiness' }, { match: {}, probe: 'none' }], probe: 'readiness' },
    { name: 'A rule that needs a namespace does not match an object without one.', rules: [{ match: { namespaces: ['*'] }, probe: 'none' }], probe: 'tcp', noNamespace: true },
  ])('$name', ({ rules, probe, noNamespace }) => {
    const object = service();
    if (noNamespace) delete (object['metadata'] as JsonObject)['namespace'];
    const decision = decide({ object, operation: 'CREATE', policy: policy({ provider: 'azure', rules }) });
    expect(decision.probe).toBe(probe);
  });

  it('The request namespace wins over an empty metadata.namespace.', () => {
    const object = service();
    delete (object['metadata'] as JsonObject)['namespace'];
    const p = policy({ provider: 'azure', rules: [{ match: { namespaces: ['team-a'] }, probe: 'none' }] });
    expect(decide({ object, operation: 'CREATE', policy: p, namespace: 'team-a' }).probe).toBe('none');
  });
});

describe('decide on Gateways', () => {
  it.each([
    {
      name: 'A Gateway without spec.infrastructure gets metadata.annotations for its HTTP and HTTPS listeners, not TLS.',
      object: fixture('gateway-plain.yaml'),
      policy: azure,
      patch: [{ op: 'add', path: '/metadata/annotations', value: { [`${AZ}port_80_health-probe_protocol`]: 'tcp', [`${AZ}port_443_health-probe_protocol`]: 'tcp' } }],
    },
    {
      name: 'A Gateway with spec.infrastructure.annotations gets the annotations there.',
      object: fixture('gateway-infrastructure.yaml'),
      policy: azure,
      patch: [{ op: 'add', path: '/spec/infrastructure/annotations/service.beta.kubernetes.io~1port_80_health-probe_protocol', value: 'tcp' }],
    },
    {
      name: 'annotationsTarget infrastructure carries the propagating metadata annotations into the new map, so none stops propagating.',
      object: fixture('gateway-azure-internal.yaml'),
      policy: policy({ provider: 'azure', gateway: { annotationsTarget: 'infrastructure' } }),
      patch: [
        {
          op: 'add',
          path: '/spec/infrastructure',
          value: { annotations: { [`${AZ}azure-load-balancer-internal`]: 'true', [`${AZ}port_80_health-probe_protocol`]: 'tcp' } },
        },
      ],
    },
    {
      name: 'A v1beta1 Gateway relying on metadata propagation keeps its annotations and gains the probe next to them.',
      object: fixture('gateway-azure-internal.yaml'),
      policy: azure,
      patch: [{ op: 'add', path: '/metadata/annotations/service.beta.kubernetes.io~1port_80_health-probe_protocol', value: 'tcp' }],
    },
    {
      name: 'An Istio Gateway with probe readiness points the probe at the generated status-port.',
      object: fixture('kserve-inference-gateway.yaml'),
      policy: policy({ provider: 'azure', probe: 'readiness' }),
      patch: [
        {
          op: 'add',
          path: '/metadata/annotations',
          value: {
            [`${AZ}port_80_health-probe_protocol`]: 'http',
            [`${AZ}port_80_health-probe_port`]: 'status-port',
            [`${AZ}port_80_health-probe_request-path`]: '/healthz/ready',
          },
        },
      ],
    },
  ])('$name', ({ object, policy: p, patch }) => {
    const decision = decide({ object, operation: 'CREATE', policy: p });
    expect(decision.patch).toEqual(patch);
    expect(decide({ object: decision.object, operation: 'UPDATE', policy: p }).outcome).toBe('unchanged');
  });

  it('A Gateway of another class has no status port, so readiness falls back to TCP with a warning.', () => {
    const object = fixture('gateway-plain.yaml');
    (object['spec'] as JsonObject)['gatewayClassName'] = 'envoy';
    const decision = decide({ object, operation: 'CREATE', policy: policy({ provider: 'azure', probe: 'readiness' }) });
    expect(decision.changes.map((c) => c.value)).toEqual(['tcp', 'tcp']);
    expect(decision.warnings).toEqual(['lb-probe-webhook: Azure: readiness port status-port is not a port of the Service, so the probe stays TCP']);
  });

  it('When the infrastructure map would exceed the cap, the Gateway is left as it is with a warning saying what to do.', () => {
    const p = policy({ provider: 'azure', probe: 'readiness', gateway: { maxInfrastructureAnnotations: 3 } });
    const decision = decide({ object: fixture('gateway-infrastructure.yaml'), operation: 'CREATE', policy: p });
    expect(decision).toMatchObject({ outcome: 'unchanged', patch: [], changes: [] });
    expect(decision.warnings).toEqual([
      'lb-probe-webhook: left unchanged; remove some, raise gateway.maxInfrastructureAnnotations (Gateway API v1.6+ allows 16), or annotate the generated Service: spec.infrastructure.annotations would hold 4 entries, over the cap of 3',
    ]);
  });

  it('annotationsTarget metadata on a Gateway with spec.infrastructure.annotations writes metadata and warns that it will not propagate.', () => {
    const p = policy({ provider: 'azure', gateway: { annotationsTarget: 'metadata' } });
    const decision = decide({ object: fixture('gateway-infrastructure.yaml'), operation: 'CREATE', policy: p });
    expect(decision.changes.map((c) => c.location)).toEqual(['metadata.annotations']);
    expect(decision.warnings).toEqual([
      'lb-probe-webhook: spec.infrastructure.annotations is set, so annotations in metadata do not reach the generated Service (policy gateway.annotationsTarget: metadata)',
    ]);
  });

  it.each([
    ['a Service port 0', 'Service', { type: 'LoadBalancer', ports: [{ port: 0, appProtocol: 'http' }] }, 'spec.ports[0].port: must be a port number from 1 to 65535, got 0'],
    ['a Service port given as a string', 'Service', { type: 'LoadBalancer', ports: [{ port: 80, appProtocol: 'http' }, { port: '443', appProtocol: 'https' }] }, 'spec.ports[1].port: must be a port number from 1 to 65535, got "443"'],
    ['a Service port missing', 'Service', { type: 'LoadBalancer', ports: [{ name: 'http', appProtocol: 'http' }] }, 'spec.ports[0].port: must be a port number from 1 to 65535, got none'],
    ['a Gateway listener port 70000', 'Gateway', { gatewayClassName: 'istio', listeners: [{ name: 'h', port: 70000, protocol: 'HTTP' }] }, 'spec.listeners[0].port: must be a port number from 1 to 65535, got 70000'],
  ] as const)('An object the API server would refuse (%s) is left as it is, with a warning naming the field, and marked invalid.', (_name, kind, spec, why) => {
    const apiVersion = kind === 'Service' ? 'v1' : 'gateway.networking.k8s.io/v1';
    const decision = decide({ object: { apiVersion, kind, metadata: { name: 'x' }, spec }, operation: 'CREATE', policy: azure });
    expect(decision).toMatchObject({ outcome: 'unchanged', patch: [], changes: [], invalid: `${why} (the API server refuses this ${kind})` });
    expect(decision.warnings).toEqual([`lb-probe-webhook: left unchanged: ${why} (the API server refuses this ${kind})`]);
  });

  it('A Gateway without metadata gets the whole metadata map added.', () => {
    const object = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', spec: { listeners: [{ name: 'h', port: 8080, protocol: 'HTTP' }] } };
    expect(decide({ object, operation: 'CREATE', policy: azure }).patch).toEqual([
      { op: 'add', path: '/metadata', value: { annotations: { [`${AZ}port_8080_health-probe_protocol`]: 'tcp' } } },
    ]);
  });

  it('The admitted object is never modified.', () => {
    const object = fixture('gateway-azure-internal.yaml');
    const before = structuredClone(object);
    decide({ object, operation: 'CREATE', policy: policy({ provider: 'azure', gateway: { annotationsTarget: 'infrastructure' } }) });
    expect(object).toEqual(before);
  });

  it('A Gateway asking Istio for a ClusterIP Service is skipped.', () => {
    const object = withAnnotations(fixture('gateway-plain.yaml'), { 'networking.istio.io/service-type': 'ClusterIP' });
    expect(decide({ object, operation: 'CREATE', policy: azure }).outcome).toBe('skipped');
  });

  it('kinds: [Service] skips Gateways.', () => {
    const decision = decide({ object: fixture('gateway-plain.yaml'), operation: 'CREATE', policy: policy({ provider: 'azure', kinds: ['Service'] }) });
    expect(decision).toMatchObject({ outcome: 'skipped', notes: ['the policy does not handle Gateways'] });
  });

  it('A Gateway without HTTP listeners is skipped.', () => {
    const object = fixture('gateway-plain.yaml');
    (object['spec'] as JsonObject)['listeners'] = [{ name: 'tls', port: 443, protocol: 'TLS' }];
    expect(decide({ object, operation: 'CREATE', policy: azure }).notes).toEqual(['no HTTP or HTTPS listener']);
  });
});

describe('decide on odd input', () => {
  it.each([
    ['null', null],
    ['a string', 'Service'],
    ['an array', [1, 2]],
    ['a Service whose ports are a string', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { type: 'LoadBalancer', ports: 'http' } }],
    ['a Service whose port entries are odd', { apiVersion: 'v1', kind: 'Service', spec: { type: 'LoadBalancer', ports: [null, 'x', { port: '80', appProtocol: 'http' }, { port: 8.5 }] } }],
    ['a Service whose metadata is an array', { apiVersion: 'v1', kind: 'Service', metadata: [], spec: { type: 'LoadBalancer', ports: [{ port: 80, appProtocol: 'http' }] } }],
    ['a Gateway whose listeners are odd', { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', spec: { listeners: [null, { port: 80 }, { protocol: 'HTTP' }] } }],
  ])('%s is answered without throwing.', (_name, object) => {
    expect(() => decide({ object, operation: 'CREATE', policy: azure })).not.toThrow();
  });

  it('A Service whose metadata is an array still gets valid annotations.', () => {
    const object = { apiVersion: 'v1', kind: 'Service', metadata: [], spec: { type: 'LoadBalancer', ports: [{ port: 80, appProtocol: 'http' }] } };
    const decision = decide({ object, operation: 'CREATE', policy: azure });
    expect(decision.object?.['metadata']).toEqual({ annotations: { [`${AZ}port_80_health-probe_protocol`]: 'tcp' } });
  });

  it('handledKind recognises Services and v1/v1beta1 Gateways only.', () => {
    expect(handledKind({ apiVersion: 'v1', kind: 'Service' })).toBe('Service');
    expect(handledKind({ apiVersion: 'gateway.networking.k8s.io/v1beta1', kind: 'Gateway' })).toBe('Gateway');
    expect(handledKind({ apiVersion: 'gateway.networking.k8s.io/v1alpha2', kind: 'Gateway' })).toBeUndefined();
    expect(handledKind({ apiVersion: 'networking.istio.io/v1', kind: 'Gateway' })).toBeUndefined();
  });
});

describe('decide within the API server\'s limits', () => {
  const service = (ports: number, annotations: Record<string, string> = {}): JsonObject => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'many', namespace: 'ns', annotations },
    spec: { type: 'LoadBalancer', ports: Array.from({ length: ports }, (_, i) => ({ name: `http-${i + 1}`, port: i + 1, protocol: 'TCP', appProtocol: 'http' })) },
  });
  const bytes = (map: Record<string, string>): number => Object.entries(map).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);

  it('A Service with as many http ports as the cap gets one annotation per port, and they fit the API server\'s limit.', () => {
    const decision = decide({ object: service(MAX_AFFECTED_PORTS), operation: 'CREATE', policy: azure });
    expect(decision.outcome).toBe('patched');
    expect(decision.changes).toHaveLength(MAX_AFFECTED_PORTS);
    const annotations = (decision.object?.['metadata'] as { annotations: Record<string, string> }).annotations;
    expect(bytes(annotations)).toBeLessThanOrEqual(ANNOTATIONS_SIZE_LIMIT);
  });

  it('A Service with one http port more than the cap is left as it is, with a warning that names the count and what to do.', () => {
    const decision = decide({ object: service(MAX_AFFECTED_PORTS + 1), operation: 'CREATE', policy: azure });
    expect(decision).toMatchObject({ outcome: 'unchanged', patch: [], changes: [], reasons: [] });
    expect(decision.warnings).toEqual([
      `lb-probe-webhook: left unchanged; annotate it by hand or set lb-probe-webhook/probe: none: ${MAX_AFFECTED_PORTS + 1} ports with appProtocol http or https, ` +
        `over the ${MAX_AFFECTED_PORTS} one object can be annotated for (their annotations would exceed the API server's 256 KiB limit)`,
    ]);
  });

  it('A Service whose annotations would cross the API server\'s limit with ours is left as it is, so the API server still accepts it.', () => {
    const key = `${AZ}port_1_health-probe_protocol`;
    // Room for everything but the one annotation the decision would add.
    const filler = 'kubectl.kubernetes.io/last-applied-configuration';
    const room = ANNOTATIONS_SIZE_LIMIT - Buffer.byteLength(filler) - Buffer.byteLength(key) - 'tcp'.length;
    const near = decide({ object: service(1, { [filler]: 'x'.repeat(room) }), operation: 'CREATE', policy: azure });
    expect(near.outcome).toBe('patched');
    const over = decide({ object: service(1, { [filler]: 'x'.repeat(room + 1) }), operation: 'CREATE', policy: azure });
    expect(over).toMatchObject({ outcome: 'unchanged', patch: [], changes: [] });
    expect(over.warnings).toEqual([
      'lb-probe-webhook: left unchanged; remove some annotations (a large kubectl.kubernetes.io/last-applied-configuration: use kubectl apply --server-side) or annotate it by hand: ' +
        `metadata.annotations would hold ${ANNOTATIONS_SIZE_LIMIT + 1} bytes, over the API server's limit of ${ANNOTATIONS_SIZE_LIMIT}`,
    ]);
  });
});
