import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decide } from '../../src/decision/decide.js';
import type { JsonObject } from '../../src/core/json.js';
import { gatewayTarget, serviceTarget } from '../../src/core/target.js';
import { PROFILE_NAMES, PROFILES } from '../../src/profiles/index.js';
import { fixture, policy } from '../support/fixtures.js';

const AZ = 'service.beta.kubernetes.io/';
const AWS = 'service.beta.kubernetes.io/aws-load-balancer-';
const ALB = 'alb.ingress.kubernetes.io/';
const READINESS = { port: 'status-port', path: '/healthz/ready' };

const NGINX = () => fixture('ingress-nginx-controller.yaml');
const NGINX_ADMISSION = () => fixture('ingress-nginx-controller.yaml', 1);
const HAPROXY = () => fixture('haproxy-ingress-controller.yaml');
const ISTIO_CLASSIC = () => fixture('istio-classic-ingressgateway.yaml');
const ISTIO_GENERATED = () => fixture('istio-gateway-service.yaml');

function edit(object: JsonObject, change: (object: JsonObject) => void): JsonObject {
  change(object);
  return object;
}

function spec(object: JsonObject): JsonObject {
  return object['spec'] as JsonObject;
}

function metadata(object: JsonObject): JsonObject {
  return object['metadata'] as JsonObject;
}

/** annotationsAfter returns the metadata annotations of the decision's object (the input's when nothing was patched). */
function annotationsAfter(object: JsonObject, settings: Record<string, unknown>): Record<string, unknown> {
  const decision = decide({ object, operation: 'CREATE', policy: policy(settings) });
  return ((decision.object ?? object)['metadata'] as JsonObject)['annotations'] as Record<string, unknown>;
}

describe('the profile registry', () => {
  it('lists istio, ingress-nginx and haproxy-ingress, in the order they are tried, each under its own name.', () => {
    expect(PROFILE_NAMES).toEqual(['istio', 'ingress-nginx', 'haproxy-ingress']);
    for (const name of PROFILE_NAMES) expect(PROFILES[name]?.name).toBe(name);
  });

  it('is what the Helm chart’s values schema accepts under policy.profiles.', () => {
    const schema = JSON.parse(readFileSync(new URL('../../charts/lb-probe-webhook/values.schema.json', import.meta.url), 'utf8')) as {
      properties: { policy: { properties: { profiles: { items: { enum: string[] } } } } };
    };
    expect(schema.properties.policy.properties.profiles.items.enum).toEqual(PROFILE_NAMES);
  });
});

describe('which profile recognizes a Service', () => {
  const recognizing = (object: JsonObject) => PROFILE_NAMES.filter((name) => PROFILES[name]!.recognizes(serviceTarget(object), READINESS));
  it.each([
    ['The Service Istio generates for a Gateway (gateway.istio.io/managed) is istio.', ISTIO_GENERATED(), ['istio']],
    ['The classic istio/gateway Service (istio: ingressgateway, app: istio-ingressgateway) is istio.', ISTIO_CLASSIC(), ['istio']],
    ['A Service labelled only app: istio-ingressgateway is istio.', edit(ISTIO_CLASSIC(), (o) => (metadata(o)['labels'] = { app: 'istio-ingressgateway' })), ['istio']],
    ['An Istio-labelled Service without the status port is nothing: its readiness endpoint is missing.', edit(ISTIO_CLASSIC(), (o) => (spec(o)['ports'] as unknown[]).shift()), []],
    ['The ingress-nginx chart’s controller Service is ingress-nginx.', NGINX(), ['ingress-nginx']],
    ['The ingress-nginx chart’s admission webhook Service, with the same labels but no http port, is nothing.', NGINX_ADMISSION(), []],
    ['An ingress-nginx controller Service with only the component label missing is nothing.', edit(NGINX(), (o) => delete (metadata(o)['labels'] as JsonObject)['app.kubernetes.io/component']), []],
    ['The haproxytech kubernetes-ingress chart’s controller Service is haproxy-ingress.', HAPROXY(), ['haproxy-ingress']],
    ['A Service without any of these labels is nothing.', fixture('service-user-probe.yaml'), []],
  ])('%s', (_name, object, expected) => {
    expect(recognizing(object)).toEqual(expected);
  });

  it('A Gateway of class istio is istio, and its generated Service gets the status port first; a Gateway of another class is nothing.', () => {
    const gateway = fixture('gateway-plain.yaml');
    const istio = PROFILES['istio']!;
    const target = gatewayTarget(gateway, (className) => istio.gatewayPorts?.(className) ?? []);
    expect(target?.ports[0]).toEqual({ name: 'status-port', port: 15021, protocol: 'TCP', appProtocol: 'tcp' });
    expect(istio.recognizes(target!, READINESS)).toBe(true);
    (gateway['spec'] as JsonObject)['gatewayClassName'] = 'eg';
    const other = gatewayTarget(gateway, (className) => istio.gatewayPorts?.(className) ?? []);
    expect(other?.ports.map((p) => p.port)).not.toContain(15021);
    expect(PROFILE_NAMES.filter((name) => PROFILES[name]!.recognizes(other!, READINESS))).toEqual([]);
  });
});

describe('what each profile writes under Azure with probe readiness', () => {
  it.each([
    [
      'The classic Istio gateway is probed on its status port at /healthz/ready, per traffic port.',
      ISTIO_CLASSIC(),
      {
        [`${AZ}port_80_health-probe_protocol`]: 'http',
        [`${AZ}port_80_health-probe_port`]: 'status-port',
        [`${AZ}port_80_health-probe_request-path`]: '/healthz/ready',
        [`${AZ}port_443_health-probe_protocol`]: 'http',
        [`${AZ}port_443_health-probe_port`]: 'status-port',
        [`${AZ}port_443_health-probe_request-path`]: '/healthz/ready',
      },
    ],
    [
      'ingress-nginx is probed with GET /healthz on its http port for both traffic ports (the https port speaks TLS).',
      NGINX(),
      {
        [`${AZ}port_80_health-probe_protocol`]: 'http',
        [`${AZ}port_80_health-probe_port`]: 'http',
        [`${AZ}port_80_health-probe_request-path`]: '/healthz',
        [`${AZ}port_443_health-probe_protocol`]: 'http',
        [`${AZ}port_443_health-probe_port`]: 'http',
        [`${AZ}port_443_health-probe_request-path`]: '/healthz',
      },
    ],
    [
      'haproxy-ingress is probed over TCP: its health endpoint is no Service port.',
      HAPROXY(),
      { [`${AZ}port_80_health-probe_protocol`]: 'tcp', [`${AZ}port_443_health-probe_protocol`]: 'tcp' },
    ],
  ])('%s', (_name, object, expected) => {
    expect(annotationsAfter(object, { provider: 'azure', probe: 'readiness' })).toEqual(expected);
  });

  it('The decision names the profile in its reasons and the haproxy-ingress note, and gives no warning.', () => {
    const decision = decide({ object: HAPROXY(), operation: 'CREATE', policy: policy({ provider: 'azure', probe: 'readiness' }) });
    expect(decision.profile).toBe('haproxy-ingress');
    expect(decision.warnings).toEqual([]);
    expect(decision.notes).toEqual(['the health endpoint of haproxy-ingress (port 1042) is not a port of the Service, so readiness is TCP (profile haproxy-ingress)']);
    expect(decision.reasons).toEqual([
      'Azure probes port 80 (http) over TCP instead of GET / (appProtocol http) (profile haproxy-ingress)',
      'Azure probes port 443 (https) over TCP instead of GET / (appProtocol https) (profile haproxy-ingress)',
    ]);
    const nginx = decide({ object: NGINX(), operation: 'CREATE', policy: policy({ provider: 'azure', probe: 'readiness' }) });
    expect(nginx.reasons[0]).toBe('Azure probes port 80 (http) with GET :http/healthz instead of GET / (profile ingress-nginx)');
  });

  it('Without the profiles (profiles: []) ingress-nginx falls back to the policy’s readiness port, which it lacks: TCP with a warning, no profile named.', () => {
    const decision = decide({ object: NGINX(), operation: 'CREATE', policy: policy({ provider: 'azure', probe: 'readiness', profiles: [] }) });
    expect(decision.profile).toBeUndefined();
    expect(decision.warnings).toEqual(['lb-probe-webhook: Azure: readiness port status-port is not a port of the Service, so the probe stays TCP']);
    expect(decision.changes.map((c) => `${c.key}=${c.value}`)).toEqual([`${AZ}port_80_health-probe_protocol=tcp`, `${AZ}port_443_health-probe_protocol=tcp`]);
  });

  it('A profile not listed is not recognized: profiles [istio] leaves haproxy-ingress to the fallback.', () => {
    const decision = decide({ object: HAPROXY(), operation: 'CREATE', policy: policy({ provider: 'azure', probe: 'readiness', profiles: ['istio'] }) });
    expect(decision.profile).toBeUndefined();
    expect(decision.warnings).toEqual(['lb-probe-webhook: Azure: readiness port status-port is not a port of the Service, so the probe stays TCP']);
  });

  it('With probe tcp every profile gets the TCP probe, and the profile is still named.', () => {
    const decision = decide({ object: NGINX(), operation: 'CREATE', policy: policy({ provider: 'azure' }) });
    expect(decision.profile).toBe('ingress-nginx');
    expect(decision.changes.map((c) => `${c.key}=${c.value}`)).toEqual([`${AZ}port_80_health-probe_protocol=tcp`, `${AZ}port_443_health-probe_protocol=tcp`]);
  });

  it('Without the istio profile a Gateway of class istio has no status port, so readiness falls back to TCP with a warning.', () => {
    const decision = decide({ object: fixture('gateway-plain.yaml'), operation: 'CREATE', policy: policy({ provider: 'azure', probe: 'readiness', profiles: ['ingress-nginx'] }) });
    expect(decision.warnings).toEqual(['lb-probe-webhook: Azure: readiness port status-port is not a port of the Service, so the probe stays TCP']);
  });
});

describe('rules[].readiness', () => {
  const rules = [{ match: { labels: { 'app.kubernetes.io/name': 'ingress-nginx' } }, readiness: { port: 'https', path: '/ready' } }];

  it('A matching rule’s readiness endpoint replaces the profile’s, and the rule without probe keeps the policy’s probe.', () => {
    expect(annotationsAfter(NGINX(), { provider: 'azure', probe: 'readiness', rules })).toEqual({
      [`${AZ}port_80_health-probe_protocol`]: 'http',
      [`${AZ}port_80_health-probe_port`]: 'https',
      [`${AZ}port_80_health-probe_request-path`]: '/ready',
      [`${AZ}port_443_health-probe_protocol`]: 'http',
      [`${AZ}port_443_health-probe_port`]: 'https',
      [`${AZ}port_443_health-probe_request-path`]: '/ready',
    });
  });

  it('A rule’s readiness port the Service lacks falls back to TCP with a warning naming the profile.', () => {
    const decision = decide({
      object: NGINX(),
      operation: 'CREATE',
      policy: policy({ provider: 'azure', probe: 'readiness', rules: [{ match: {}, readiness: { port: 'admin' } }] }),
    });
    expect(decision.warnings).toEqual(['lb-probe-webhook: Azure: readiness port admin is not a port of the Service, so the probe stays TCP (profile ingress-nginx)']);
  });

  it('A rule’s readiness endpoint gives haproxy-ingress an HTTP probe its profile could not.', () => {
    const rule = [{ match: { namespaces: ['haproxy-*'] }, probe: 'readiness', readiness: { port: 'stat', path: '/healthz' } }];
    expect(annotationsAfter(HAPROXY(), { provider: 'azure', rules: rule })).toMatchObject({ [`${AZ}port_80_health-probe_port`]: 'stat' });
  });
});

describe('what each profile writes under AWS (NLB)', () => {
  const owned = (object: JsonObject) => edit(object, (o) => (spec(o)['loadBalancerClass'] = 'service.k8s.aws/nlb'));

  it.each([
    ['The classic Istio gateway gets the status port by name.', owned(ISTIO_CLASSIC()), { [`${AWS}healthcheck-protocol`]: 'http', [`${AWS}healthcheck-port`]: 'status-port', [`${AWS}healthcheck-path`]: '/healthz/ready' }],
    ['ingress-nginx gets its http port by name and /healthz, with instance targets.', owned(NGINX()), { [`${AWS}healthcheck-protocol`]: 'http', [`${AWS}healthcheck-port`]: 'http', [`${AWS}healthcheck-path`]: '/healthz' }],
    ['haproxy-ingress keeps the NLB default, TCP on the traffic port.', owned(HAPROXY()), null],
  ])('%s', (_name, object, expected) => {
    expect(annotationsAfter(object, { provider: 'aws', probe: 'readiness' }) ?? null).toEqual(expected);
  });

  it('ingress-nginx with ip targets is left as it is with a warning, since its http port’s targetPort is a name the controller refuses.', () => {
    const object = edit(owned(NGINX()), (o) => (metadata(o)['annotations'] = { [`${AWS}nlb-target-type`]: 'ip' }));
    const decision = decide({ object, operation: 'CREATE', policy: policy({ provider: 'aws', probe: 'readiness' }) });
    expect(decision.outcome).toBe('unchanged');
    expect(decision.warnings).toEqual([
      `lb-probe-webhook: AWS: give Service port 80 (http) a numeric targetPort, or set ${AWS}healthcheck-port to the container port number yourself: ` +
        "with ip targets the Load Balancer Controller refuses the whole Service when the health check port's targetPort is a name (http); the check stays TCP (profile ingress-nginx)",
    ]);
  });
});

describe('AWS ALB (aws.alb: true)', () => {
  const alb = { provider: 'aws', aws: { alb: true } };
  const nodePort = (object: JsonObject) => edit(object, (o) => (spec(o)['type'] = 'NodePort'));

  it.each([
    ['A NodePort ingress-nginx controller Service gets traffic-port and /healthz.', nodePort(NGINX()), { [`${ALB}healthcheck-protocol`]: 'HTTP', [`${ALB}healthcheck-port`]: 'traffic-port', [`${ALB}healthcheck-path`]: '/healthz' }],
    ['A ClusterIP classic Istio gateway gets its status port by name and /healthz/ready.', edit(ISTIO_CLASSIC(), (o) => (spec(o)['type'] = 'ClusterIP')), { [`${ALB}healthcheck-protocol`]: 'HTTP', [`${ALB}healthcheck-port`]: 'status-port', [`${ALB}healthcheck-path`]: '/healthz/ready' }],
    ['An ingress-nginx Service without appProtocol gets them too: ALB checks GET / whatever the appProtocol.', nodePort(edit(NGINX(), (o) => (spec(o)['ports'] as JsonObject[]).forEach((p) => delete p['appProtocol']))), { [`${ALB}healthcheck-protocol`]: 'HTTP', [`${ALB}healthcheck-port`]: 'traffic-port', [`${ALB}healthcheck-path`]: '/healthz' }],
  ])('%s', (_name, object, expected) => {
    expect(annotationsAfter(object, alb)).toEqual(expected);
  });

  it('A LoadBalancer ingress-nginx Service the NLB controller owns gets both the NLB and the ALB checks under probe readiness.', () => {
    const object = edit(NGINX(), (o) => (spec(o)['loadBalancerClass'] = 'service.k8s.aws/nlb'));
    expect(annotationsAfter(object, { ...alb, probe: 'readiness' })).toEqual({
      [`${AWS}healthcheck-protocol`]: 'http',
      [`${AWS}healthcheck-port`]: 'http',
      [`${AWS}healthcheck-path`]: '/healthz',
      [`${ALB}healthcheck-protocol`]: 'HTTP',
      [`${ALB}healthcheck-port`]: 'traffic-port',
      [`${ALB}healthcheck-path`]: '/healthz',
    });
  });

  it.each([
    ['without aws.alb, a NodePort ingress-nginx Service', nodePort(NGINX()), { provider: 'aws' }, 'not a LoadBalancer Service'],
    ['a NodePort Service no profile recognizes', nodePort(fixture('service-user-probe.yaml')), alb, 'not a LoadBalancer Service'],
    ['the ingress-nginx admission webhook Service', NGINX_ADMISSION(), alb, 'not a LoadBalancer Service'],
    ['with provider azure, a NodePort ingress-nginx Service', nodePort(NGINX()), { provider: 'azure', aws: { alb: true } }, 'not a LoadBalancer Service'],
  ])('Skips %s.', (_name, object, settings, note) => {
    const decision = decide({ object, operation: 'CREATE', policy: policy(settings) });
    expect(decision).toMatchObject({ outcome: 'skipped', notes: [note], patch: [] });
  });

  it('haproxy-ingress gets nothing and a warning: ALB checks only HTTP, and its health endpoint is no Service port.', () => {
    const decision = decide({ object: nodePort(HAPROXY()), operation: 'CREATE', policy: policy(alb) });
    expect(decision.outcome).toBe('unchanged');
    expect(decision.warnings).toEqual([
      'lb-probe-webhook: AWS ALB: the health endpoint of haproxy-ingress (port 1042) is not a port of the Service, and ALB checks only HTTP or HTTPS, so its check stays GET / on the traffic port (profile haproxy-ingress)',
    ]);
  });

  it('A user’s own ALB health check path is never overwritten: the whole group is kept.', () => {
    const object = edit(nodePort(NGINX()), (o) => (metadata(o)['annotations'] = { [`${ALB}healthcheck-path`]: '/ping' }));
    const decision = decide({ object, operation: 'CREATE', policy: policy(alb) });
    expect(decision.outcome).toBe('unchanged');
    expect(decision.notes).toEqual([`kept ${ALB}healthcheck-path="/ping" set on the object (overwrite: false)`]);
  });

  it('An Istio status port whose targetPort is a name is left alone with a warning unless the Service says instance targets.', () => {
    const named = () =>
      edit(nodePort(ISTIO_CLASSIC()), (o) => {
        (spec(o)['ports'] as JsonObject[])[0]!['targetPort'] = 'status';
      });
    const decision = decide({ object: named(), operation: 'CREATE', policy: policy(alb) });
    expect(decision.outcome).toBe('unchanged');
    expect(decision.warnings[0]).toMatch(/^lb-probe-webhook: AWS ALB: give port 15021 \(status-port\) a numeric targetPort or set alb\.ingress\.kubernetes\.io\/target-type: instance on the Service: .*\(status\)/);
    const instance = edit(named(), (o) => (metadata(o)['annotations'] = { [`${ALB}target-type`]: 'instance' }));
    expect(annotationsAfter(instance, alb)).toMatchObject({ [`${ALB}healthcheck-port`]: 'status-port' });
  });

  it('Applying the ALB decision to its own result changes nothing.', () => {
    const first = decide({ object: nodePort(NGINX()), operation: 'CREATE', policy: policy(alb) });
    const second = decide({ object: first.object, operation: 'UPDATE', policy: policy(alb) });
    expect(second.outcome).toBe('unchanged');
  });
});
