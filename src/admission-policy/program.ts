/**
 * The decision as a CEL program: the same steps as src/decision/decide.ts, one named variable
 * each, over the object under admission and the policy's values (the variables settings.ts
 * writes before these). The program is the same for every policy, so the Helm chart carries it as
 * a file and renders only the policy's values; test/e2e/admission-policy.test.ts stores objects
 * with it and with the webhook on a real API server and compares them.
 *
 * CEL in the API server (k8s.io/apiserver pkg/cel/environment/base.go): list and map literals must
 * be homogeneous (dyn() where they mix types), two-variable comprehensions from compatibility
 * version 1.32, the lists extension's flatten and slice from 1.34. Every variable is its own
 * program with a cost limit of 1,000,000, and one evaluation of a mutation or validation may spend
 * 10,000,000 in all (pkg/apis/cel/config.go), so the costly steps are split across variables.
 */
import { ISTIO_STATUS_PORT, ISTIO_GATEWAY_CLASSES } from '../profiles/istio.js';
import { INGRESS_NGINX_HEALTH_PATH, INGRESS_NGINX_LABELS } from '../profiles/ingress-nginx.js';
import { HAPROXY_INGRESS_LABELS } from '../profiles/haproxy-ingress.js';
import { ALB_PREFIX, ALB_TARGET_TYPE_ANNOTATION, AWS_LBC_CLASS, AWS_TARGET_TYPE_ANNOTATION, AWS_TYPE_ANNOTATION } from '../providers/aws.js';
import { PROBE_ANNOTATION, PROBE_SETTINGS } from '../core/probe.js';
import { ISTIO_SERVICE_TYPE_ANNOTATION, NOT_PROPAGATED_PREFIX } from '../core/target.js';
import { ANNOTATIONS_SIZE_LIMIT, MAX_AFFECTED_PORTS } from '../decision/decide.js';
import { celLiteral, celString } from './cel.js';

/** Variable is one named CEL expression of the policy, with a comment saying what it holds. */
export interface Variable {
  readonly name: string;
  readonly expression: string;
  readonly comment: string;
}

const AZURE_PREFIX = 'service.beta.kubernetes.io/';
const AWS_PREFIX = 'service.beta.kubernetes.io/aws-load-balancer-';
const DO_PREFIX = 'service.beta.kubernetes.io/do-loadbalancer-';
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
const KUBE_PROXY_PORT = '10256';
const KUBE_PROXY_PATH = '/healthz';

const s = celString;

/** portsNamed is the CEL list of the target's ports a reference names: by number when it is all digits (leading zeros aside), else by name (findPort). */
function portsNamed(ref: string): string {
  return (
    `(${ref}.matches('^[0-9]+$')\n` +
    `    ? variables.ports.filter(p, string(p.port) == ${ref}.find('[1-9][0-9]*$'))\n` +
    `    : variables.ports.filter(p, p.?name.orValue('') == ${ref}))`
  );
}

/** describe names a port for messages, as describePort does: `port 80 (http)`. */
function describe(port: string): string {
  return `'port ' + string(${port}.port) + (${port}.?name.orValue('') != '' ? ' (' + ${port}.name + ')' : '')`;
}

/** azureKey is a per-port Azure annotation key. */
function azureKey(port: string, setting: string): string {
  return `${s(`${AZURE_PREFIX}port_`)} + string(${port}.port) + ${s(`_${setting}`)}`;
}

/** group builds one annotation group: its entries, each [key, value] (a third element 'constant' marks a custom per-port key without {port}), and its reason. */
function group(entries: string, reason: string): string {
  return `{'entries': dyn(${entries}), 'reason': dyn(${reason})}`;
}

/** labelIs tests one label of the object. */
function labelIs(key: string, value: string): string {
  return `variables.labels[?${s(key)}].orValue('') == ${s(value)}`;
}

/**
 * fill fills the placeholders other than {port} of a part of a custom template (the text between
 * two {port}), as fillTemplate does in one pass: the readiness port (a port name or number) never
 * holds a placeholder, and the path is put in last, so nothing filled in is read again.
 */
function fill(part: string): string {
  return `${part}.replace('{readinessPort}', variables.endpoint.port).replace('{readinessPath}', variables.endpoint.path)`;
}

/**
 * PROVIDER_GROUPS says, for every provider the program knows, which variable holds its annotation
 * groups, or null for a provider that never writes one (its cloud's default probe is right, or it
 * cannot be changed at admission). A provider missing here is refused by the compiler: the program
 * would write nothing for it where the webhook writes something.
 */
export const PROVIDER_GROUPS: Readonly<Record<string, string | null>> = {
  azure: 'azureGroups',
  aws: 'awsGroups',
  gcp: null,
  digitalocean: 'digitaloceanGroups',
  hetzner: null,
  linode: null,
  oci: null,
  alibaba: null,
  ibm: null,
  custom: 'customGroups',
};

/** PROGRAM_PROFILES are the workload profiles the program recognizes (the `profile` variable); a policy using another is refused. */
export const PROGRAM_PROFILES: readonly string[] = ['istio', 'ingress-nginx', 'haproxy-ingress'];

/** PROGRAM is the decision, in order; every variable may read the ones before it. */
export const PROGRAM: readonly Variable[] = [
  {
    name: 'isGateway',
    comment: 'The object: a Service, or a Gateway that stands for the Service its implementation generates.',
    expression: `request.resource.resource == 'gateways'`,
  },
  { name: 'annotations', comment: 'Its own annotations and labels.', expression: `object.metadata.?annotations.orValue({})` },
  { name: 'labels', comment: '', expression: `object.metadata.?labels.orValue({})` },
  {
    name: 'hasInfrastructureAnnotations',
    comment: 'A Gateway with spec.infrastructure.annotations: Istio copies that map to the Service, and metadata.annotations only while it is absent.',
    expression: `variables.isGateway && has(object.spec.infrastructure) && has(object.spec.infrastructure.annotations)`,
  },
  {
    name: 'propagating',
    comment: 'The annotations the Service carries: a Gateway\'s that propagate to the Service it generates.',
    expression:
      `!variables.isGateway ? variables.annotations\n` +
      `  : variables.hasInfrastructureAnnotations ? object.spec.infrastructure.annotations\n` +
      `  : variables.annotations.transformMap(k, v, !k.startsWith(${s(NOT_PROPAGATED_PREFIX)}), v)`,
  },
  {
    name: 'generatesLoadBalancer',
    comment: 'A Gateway annotated for another Service type is not load-balanced.',
    expression: `!variables.isGateway || variables.annotations[?${s(ISTIO_SERVICE_TYPE_ANNOTATION)}].orValue('LoadBalancer') == 'LoadBalancer'`,
  },
  {
    name: 'serviceType',
    comment: '',
    expression: `variables.isGateway ? 'LoadBalancer' : object.spec.?type.orValue('ClusterIP')`,
  },
  { name: 'listeners', comment: 'A Gateway\'s listeners and class.', expression: `variables.isGateway ? object.spec.?listeners.orValue([]) : []` },
  { name: 'gatewayClass', comment: '', expression: `variables.isGateway ? object.spec.?gatewayClassName.orValue('') : ''` },
  {
    name: 'leadingPorts',
    comment: 'The ports an implementation puts first on the Service it generates: Istio\'s status port, with the istio profile.',
    expression:
      `'istio' in variables.profiles && variables.gatewayClass in ${celLiteral(ISTIO_GATEWAY_CLASSES)}\n` +
      `  ? [{'name': dyn(${s(ISTIO_STATUS_PORT.name ?? '')}), 'port': dyn(${ISTIO_STATUS_PORT.port}), 'protocol': dyn('TCP'), 'appProtocol': dyn(${s(ISTIO_STATUS_PORT.appProtocol ?? '')})}]\n` +
      `  : []`,
  },
  {
    name: 'ports',
    comment: 'The ports of the Service: a Service\'s own, or the leading ports and one per distinct listener port (named after its first listener, appProtocol its protocol in lower case).',
    expression:
      `!variables.isGateway ? object.spec.?ports.orValue([])\n` +
      `  : variables.leadingPorts + variables.listeners.transformList(i, l,\n` +
      `      !variables.leadingPorts.exists(p, p.port == l.port) && !variables.listeners.slice(0, i).exists(m, m.port == l.port),\n` +
      `      {'name': dyn(l.?name.orValue('')), 'port': dyn(l.port), 'protocol': dyn('TCP'), 'appProtocol': dyn(l.protocol.lowerAscii())})`,
  },
  {
    name: 'affected',
    comment: 'The ports a cloud probes with GET /: TCP with appProtocol http or https (any case); a Gateway\'s HTTP and HTTPS listener ports.',
    expression:
      `variables.isGateway\n` +
      `  ? variables.ports.filter(p, variables.listeners.exists(l, l.port == p.port && (l.protocol == 'HTTP' || l.protocol == 'HTTPS')))\n` +
      `  : variables.ports.filter(p, p.?protocol.orValue('TCP') == 'TCP' && p.?appProtocol.orValue('').lowerAscii() in ['http', 'https'])`,
  },
  {
    name: 'httpPorts',
    comment: 'The ingress-nginx controller\'s http port: appProtocol http, else named http.',
    expression:
      `variables.ports.filter(p, p.?protocol.orValue('TCP') == 'TCP' && p.?appProtocol.orValue('').lowerAscii() == 'http') +\n` +
      `  variables.ports.filter(p, p.?protocol.orValue('TCP') == 'TCP' && p.?name.orValue('') == 'http')`,
  },
  {
    name: 'profile',
    comment: 'The first profile in use that recognizes the workload, or \'\'.',
    expression:
      `'istio' in variables.profiles && (variables.isGateway ? variables.gatewayClass in ${celLiteral(ISTIO_GATEWAY_CLASSES)} :\n` +
      `    ('gateway.istio.io/managed' in variables.labels || ${labelIs('istio', 'ingressgateway')} || ${labelIs('app', 'istio-ingressgateway')}) &&\n` +
      `    size(${portsNamed('variables.readiness.port')}) > 0) ? 'istio'\n` +
      `  : !variables.isGateway && 'ingress-nginx' in variables.profiles && ${Object.entries(INGRESS_NGINX_LABELS).map(([k, v]) => labelIs(k, v)).join(' && ')} &&\n` +
      `    size(variables.httpPorts) > 0 ? 'ingress-nginx'\n` +
      `  : !variables.isGateway && 'haproxy-ingress' in variables.profiles && ${Object.entries(HAPROXY_INGRESS_LABELS).map(([k, v]) => labelIs(k, v)).join(' && ')} ? 'haproxy-ingress'\n` +
      `  : ''`,
  },
  {
    name: 'widened',
    comment: 'AWS ALB backends: Services of any type, or without an http port, that a profile recognizes.',
    expression: `variables.provider == 'aws' && variables.awsAlb && variables.profile != ''`,
  },
  {
    name: 'rule',
    comment: 'The first rule whose namespaces and labels match the object, or one that sets nothing.',
    expression:
      `(variables.rules.filter(r,\n` +
      `    (r.namespaces == null || r.namespaces.exists(g, request.namespace.matches(g))) &&\n` +
      `    r.labels.all(k, k in variables.labels && variables.labels[k] == r.labels[k]))\n` +
      `  + [{'namespaces': dyn(null), 'labels': dyn({}), 'probe': dyn(null), 'readiness': dyn(null)}])[0]`,
  },
  {
    name: 'override',
    comment: `The per-object override, ${PROBE_ANNOTATION}; a value that is no probe setting is ignored.`,
    expression: `variables.annotations[?${s(PROBE_ANNOTATION)}].orValue('')`,
  },
  {
    name: 'probe',
    comment: 'The probe setting: the override, else the matching rule\'s, else the policy\'s.',
    expression:
      `variables.override in ${celLiteral(PROBE_SETTINGS)} ? variables.override\n` +
      `  : variables.rule.probe != null ? string(variables.rule.probe) : variables.defaultProbe`,
  },
  {
    name: 'handled',
    comment: 'Whether the decision acts on the object at all.',
    expression:
      `variables.generatesLoadBalancer &&\n` +
      `  (variables.serviceType == 'LoadBalancer' || variables.widened) &&\n` +
      `  (size(variables.affected) > 0 || variables.widened) &&\n` +
      `  variables.probe != 'none'`,
  },
  {
    name: 'tooManyPorts',
    comment: `More than ${MAX_AFFECTED_PORTS} affected ports: their annotations could not fit in ${ANNOTATIONS_SIZE_LIMIT / 1024} KiB, so the object is left as it is.`,
    expression: `size(variables.affected) > ${MAX_AFFECTED_PORTS}`,
  },
  {
    name: 'endpoint',
    comment: 'The readiness endpoint asked for: the rule\'s, else the profile\'s (ingress-nginx: /healthz on its http port), else the policy\'s.',
    expression:
      `variables.rule.readiness != null ? {'port': string(variables.rule.readiness.port), 'path': string(variables.rule.readiness.path)}\n` +
      `  : variables.profile == 'ingress-nginx'\n` +
      `    ? {'port': variables.httpPorts[0].?name.orValue('') != '' ? string(variables.httpPorts[0].name) : string(variables.httpPorts[0].port), 'path': ${s(INGRESS_NGINX_HEALTH_PATH)}}\n` +
      `  : variables.readiness`,
  },
  {
    name: 'profileTcp',
    comment: 'A profile whose workload has no endpoint a load balancer can reach (haproxy-ingress): readiness is TCP.',
    expression: `variables.profile == 'haproxy-ingress' && variables.rule.readiness == null`,
  },
  {
    name: 'onTrafficPorts',
    comment: 'The traffic ports answer the endpoint too (ingress-nginx).',
    expression: `variables.profile == 'ingress-nginx' && variables.rule.readiness == null`,
  },
  {
    name: 'checkPorts',
    comment: 'The port that answers the endpoint, first of the list; empty when the Service has none.',
    expression: `variables.profileTcp ? [] : ${portsNamed('variables.endpoint.port')}`,
  },
  { name: 'hasCheck', comment: '', expression: `size(variables.checkPorts) > 0` },
  {
    name: 'intent',
    comment: 'What to probe: tcp, readiness or kube-proxy.',
    expression: `variables.probe == 'readiness' && variables.profileTcp ? 'tcp' : variables.probe`,
  },
  {
    name: 'externalTrafficPolicyLocal',
    comment: '',
    expression: `!variables.isGateway && object.spec.?externalTrafficPolicy.orValue('') == 'Local'`,
  },
  {
    name: 'hiddenPorts',
    comment: 'Azure: the status port azure.hideStatusPort keeps off the load balancer (the readiness port, else status-port).',
    expression: `variables.hasCheck ? variables.checkPorts : ${portsNamed("'status-port'")}`,
  },
  {
    name: 'azureGroups',
    comment: 'Azure (cloud-provider-azure): per affected port, the probe protocol, port and path; nothing with externalTrafficPolicy Local.',
    expression:
      `variables.externalTrafficPolicyLocal ? [] :\n` +
      `  variables.affected.map(p,\n` +
      `    variables.intent == 'kube-proxy'\n` +
      `      ? ${group(`[[${azureKey('p', 'health-probe_protocol')}, 'http'], [${azureKey('p', 'health-probe_port')}, ${s(KUBE_PROXY_PORT)}], [${azureKey('p', 'health-probe_request-path')}, ${s(KUBE_PROXY_PATH)}]]`, `'Azure probes ' + ${describe('p')} + ${s(` with GET :${KUBE_PROXY_PORT}${KUBE_PROXY_PATH} (kube-proxy) instead of GET /`)}`)}\n` +
      `    : variables.intent == 'tcp' || !variables.hasCheck\n` +
      `      ? ${group(`[[${azureKey('p', 'health-probe_protocol')}, 'tcp']]`, `'Azure probes ' + ${describe('p')} + ' over TCP instead of GET / (appProtocol ' + p.appProtocol + ')'`)}\n` +
      `      : ${group(`[[${azureKey('p', 'health-probe_protocol')}, 'http'], [${azureKey('p', 'health-probe_port')}, string(variables.endpoint.port)], [${azureKey('p', 'health-probe_request-path')}, string(variables.endpoint.path)]]`, `'Azure probes ' + ${describe('p')} + ' with GET :' + variables.endpoint.port + variables.endpoint.path + ' instead of GET /'`)})\n` +
      `  + (variables.azureHideStatusPort && size(variables.hiddenPorts) > 0 &&\n` +
      `     !variables.affected.exists(a, a.port == variables.hiddenPorts[0].port && a.?protocol.orValue('TCP') == variables.hiddenPorts[0].?protocol.orValue('TCP'))\n` +
      `    ? [${group(`[[${azureKey('variables.hiddenPorts[0]', 'no_lb_rule')}, 'true']]`, `'Azure keeps status ' + ${describe('variables.hiddenPorts[0]')} + ' off the load balancer (azure.hideStatusPort)'`)}]\n` +
      `    : [])`,
  },
  {
    name: 'awsOwned',
    comment: 'AWS: the Services the AWS Load Balancer Controller reconciles (its IsServiceSupported).',
    expression:
      `!variables.isGateway && has(object.spec.loadBalancerClass) ? object.spec.loadBalancerClass == ${s(AWS_LBC_CLASS)}\n` +
      `  : variables.propagating[?${s(AWS_TYPE_ANNOTATION)}].orValue('') == 'nlb-ip' ||\n` +
      `    (variables.propagating[?${s(AWS_TYPE_ANNOTATION)}].orValue('') == 'external' && variables.propagating[?${s(AWS_TARGET_TYPE_ANNOTATION)}].orValue('') in ['ip', 'instance'])`,
  },
  {
    name: 'awsTargetType',
    comment: 'The NLB target type: nlb-ip, or the annotation (ip, anything else instance), else aws.defaultTargetType.',
    expression:
      `variables.propagating[?${s(AWS_TYPE_ANNOTATION)}].orValue('') == 'nlb-ip' ? 'ip'\n` +
      `  : !(${s(AWS_TARGET_TYPE_ANNOTATION)} in variables.propagating) ? variables.awsDefaultTargetType\n` +
      `  : variables.propagating[${s(AWS_TARGET_TYPE_ANNOTATION)}] == 'ip' ? 'ip' : 'instance'`,
  },
  {
    name: 'awsCheckPort',
    comment: 'The NLB health check port: the readiness port\'s name (ip targets: its numeric targetPort when unnamed); \'\' when the controller would read no such port.',
    expression:
      `!variables.hasCheck ? ''\n` +
      `  : variables.awsTargetType == 'ip' && type(variables.checkPorts[0].?targetPort.orValue(0)) == string ? ''\n` +
      `  : variables.checkPorts[0].?name.orValue('') != '' ? string(variables.checkPorts[0].name)\n` +
      `  : variables.awsTargetType == 'ip' ? string(variables.checkPorts[0].?targetPort.orValue(variables.checkPorts[0].port))\n` +
      `  : ''`,
  },
  {
    name: 'awsNlbGroups',
    comment: 'AWS NLB: one health check per Service the controller owns, for readiness; instance targets with externalTrafficPolicy Local keep kube-proxy\'s.',
    expression:
      `variables.serviceType == 'LoadBalancer' && size(variables.affected) > 0 && variables.intent == 'readiness' && variables.awsOwned &&\n` +
      `  !(variables.awsTargetType == 'instance' && variables.externalTrafficPolicyLocal) && variables.awsCheckPort != ''\n` +
      `  ? [${group(`[[${s(`${AWS_PREFIX}healthcheck-protocol`)}, 'http'], [${s(`${AWS_PREFIX}healthcheck-port`)}, variables.awsCheckPort], [${s(`${AWS_PREFIX}healthcheck-path`)}, string(variables.endpoint.path)]]`, `'AWS checks the ' + variables.awsTargetType + ' targets with GET :' + variables.awsCheckPort + variables.endpoint.path`)}]\n` +
      `  : []`,
  },
  {
    name: 'albPort',
    comment: 'AWS ALB: the backend\'s health check port: traffic-port when the traffic ports answer, else the readiness port\'s name; \'\' when it has none, or its targetPort is a name and the Service is not for instance targets.',
    expression:
      `variables.onTrafficPorts ? 'traffic-port'\n` +
      `  : !variables.hasCheck || variables.checkPorts[0].?name.orValue('') == '' ? ''\n` +
      `  : variables.propagating[?${s(ALB_TARGET_TYPE_ANNOTATION)}].orValue('') != 'instance' && type(variables.checkPorts[0].?targetPort.orValue(0)) == string ? ''\n` +
      `  : string(variables.checkPorts[0].name)`,
  },
  {
    name: 'awsAlbGroups',
    comment: 'AWS ALB (aws.alb): the target group health check on every Service a profile recognizes, whatever the probe.',
    expression:
      `variables.awsAlb && variables.profile != '' && !variables.isGateway && variables.hasCheck && variables.albPort != ''\n` +
      `  ? [${group(`[[${s(`${ALB_PREFIX}healthcheck-protocol`)}, 'HTTP'], [${s(`${ALB_PREFIX}healthcheck-port`)}, variables.albPort], [${s(`${ALB_PREFIX}healthcheck-path`)}, string(variables.endpoint.path)]]`, `'AWS ALB checks the ' + variables.profile + ' backend with GET :' + variables.albPort + variables.endpoint.path + ' instead of GET / on the traffic port'`)}]\n` +
      `  : []`,
  },
  { name: 'awsGroups', comment: '', expression: `variables.awsNlbGroups + variables.awsAlbGroups` },
  {
    name: 'digitaloceanGroups',
    comment: 'DigitalOcean: for readiness, the override and a check of the readiness port\'s number.',
    expression:
      `variables.intent == 'readiness' && variables.hasCheck\n` +
      `  ? [${group(`[[${s(`${DO_PREFIX}override-health-check`)}, 'true'], [${s(`${DO_PREFIX}healthcheck-protocol`)}, 'http'], [${s(`${DO_PREFIX}healthcheck-port`)}, string(variables.checkPorts[0].port)], [${s(`${DO_PREFIX}healthcheck-path`)}, string(variables.endpoint.path)]]`, `'DigitalOcean checks the nodes with GET :' + string(variables.checkPorts[0].port) + variables.endpoint.path`)}]\n` +
      `  : []`,
  },
  {
    name: 'customTemplates',
    comment: 'custom: the templates of the intent, each key and value split at {port}, the other placeholders filled in.',
    expression:
      `{'perPort': variables.custom[variables.intent].perPort.map(t, t.map(parts, parts.map(x, ${fill('x')}))),\n` +
      ` 'perService': variables.custom[variables.intent].perService.map(t, t.map(parts, parts.map(x, ${fill('x')})))}`,
  },
  {
    name: 'customGroups',
    comment: 'custom: per affected port the per-port templates with {port} filled in, then the per-Service ones.',
    expression:
      `(size(variables.customTemplates.perPort) == 0 ? [] : variables.affected.map(p,\n` +
      `    ${group(`variables.customTemplates.perPort.map(t, [t[0].join(string(p.port)), t[1].join(string(p.port))] + (size(t[0]) == 1 ? ['constant'] : []))`, `'custom ' + variables.intent + ' probe annotations for ' + ${describe('p')}`)})) +\n` +
      `  (size(variables.customTemplates.perService) > 0\n` +
      `    ? [${group(`variables.customTemplates.perService.map(t, [t[0].join(''), t[1].join('')])`, `'custom ' + variables.intent + ' probe annotations for the Service'`)}]\n` +
      `    : [])`,
  },
  {
    name: 'groups',
    comment: 'The provider\'s annotation groups, in order; a group is applied whole or not at all.',
    expression:
      Object.entries(PROVIDER_GROUPS)
        .flatMap(([provider, groups]) => (groups === null ? [] : [`variables.provider == ${s(provider)} ? variables.${groups}\n  : `]))
        .join('') + '[]',
  },
  {
    name: 'toInfrastructure',
    comment: 'Where a Gateway\'s annotations go: spec.infrastructure.annotations (gateway.annotationsTarget infrastructure, or auto when that map exists), else metadata.annotations.',
    expression: `variables.isGateway && (variables.annotationsTarget == 'infrastructure' || (variables.annotationsTarget == 'auto' && variables.hasInfrastructureAnnotations))`,
  },
  {
    name: 'carried',
    comment: 'A new spec.infrastructure.annotations starts with the metadata annotations that propagate today, so none stops propagating.',
    expression: `variables.annotations.transformMap(k, v, !k.startsWith(${s(NOT_PROPAGATED_PREFIX)}) && k != ${s(LAST_APPLIED)}, v)`,
  },
  {
    name: 'existing',
    comment: 'The map written to, as it is before the change.',
    expression:
      `!variables.toInfrastructure ? variables.annotations\n` +
      `  : variables.hasInfrastructureAnnotations ? object.spec.infrastructure.annotations : variables.carried`,
  },
  {
    name: 'appliedGroups',
    comment: 'Never overwrite: a group with a key already set to another value is skipped whole, unless overwrite.',
    expression: `variables.groups.filter(g, variables.overwrite || g.entries.all(e, !(e[0] in variables.existing) || variables.existing[e[0]] == e[1]))`,
  },
  {
    name: 'writes',
    comment: 'Every key the applied groups set to a new value, in order (a later write of a key wins).',
    expression: `variables.appliedGroups.map(g, g.entries.filter(e, !(e[0] in variables.existing) || variables.existing[e[0]] != e[1])).flatten()`,
  },
  {
    name: 'finalWrites',
    comment: 'The writes with each key once and its last value: a custom per-port key without {port} is written for every port.',
    expression:
      `variables.writes.filter(e, size(e) == 2) +\n` +
      `  (variables.provider != 'custom' ? [] :\n` +
      `    variables.customTemplates.perPort.filter(t, size(t[0]) == 1).map(t, t[0][0])\n` +
      `      .map(k, variables.writes.filter(e, e[0] == k)).filter(w, size(w) > 0).map(w, w[size(w) - 1]))`,
  },
  {
    name: 'existingBytes',
    comment: `The size the API server counts for the map (keys and values, bytes of UTF-8); at most ${ANNOTATIONS_SIZE_LIMIT} with the change.`,
    expression: `variables.existing.transformList(k, v, size(bytes(k)) + size(bytes(v))).sum()`,
  },
  {
    name: 'finalBytes',
    comment: '',
    expression:
      `variables.existingBytes + variables.finalWrites.map(e, e[0] in variables.existing\n` +
      `  ? size(bytes(e[1])) - size(bytes(variables.existing[e[0]]))\n` +
      `  : size(bytes(e[0])) + size(bytes(e[1]))).sum()`,
  },
  {
    name: 'finalCount',
    comment: 'The entries of the map with the change (gateway.maxInfrastructureAnnotations bounds spec.infrastructure.annotations).',
    expression: `size(variables.existing) + size(variables.finalWrites.filter(e, !(e[0] in variables.existing)))`,
  },
  {
    name: 'changes',
    comment: 'The object needs a change, before the limits.',
    expression: `variables.handled && !variables.tooManyPorts && size(variables.writes) > 0`,
  },
  {
    name: 'withinLimits',
    comment: '',
    expression: `variables.finalBytes <= ${ANNOTATIONS_SIZE_LIMIT} && (!variables.toInfrastructure || variables.finalCount <= variables.maxInfrastructureAnnotations)`,
  },
  {
    name: 'patched',
    comment: 'The change is made: enforce mode, something to change, within the limits.',
    expression: `variables.mode == 'enforce' && variables.changes && variables.withinLimits`,
  },
];

/** Mutation is one JSONPatch mutation of the MutatingAdmissionPolicy. */
export interface Mutation {
  readonly comment: string;
  readonly expression: string;
}

/** MUTATIONS write the annotations: one mutation per map, each guarded by the cheap placement test first. */
export const MUTATIONS: readonly Mutation[] = [
  {
    comment: 'Services, and Gateways whose annotations go to metadata.annotations.',
    expression:
      `!variables.toInfrastructure && variables.patched\n` +
      `  ? (has(object.metadata.annotations) ? [] : [JSONPatch{op: 'add', path: '/metadata/annotations', value: {}}]) +\n` +
      `    variables.writes.map(e, JSONPatch{op: 'add', path: '/metadata/annotations/' + jsonpatch.escapeKey(e[0]), value: e[1]})\n` +
      `  : []`,
  },
  {
    comment: 'Gateways whose annotations go to spec.infrastructure.annotations.',
    expression:
      `variables.toInfrastructure && variables.patched\n` +
      `  ? (variables.hasInfrastructureAnnotations ? []\n` +
      `      : has(object.spec.infrastructure) ? [JSONPatch{op: 'add', path: '/spec/infrastructure/annotations', value: variables.carried}]\n` +
      `      : [JSONPatch{op: 'add', path: '/spec/infrastructure', value: {'annotations': variables.carried}}]) +\n` +
      `    variables.writes.map(e, JSONPatch{op: 'add', path: '/spec/infrastructure/annotations/' + jsonpatch.escapeKey(e[0]), value: e[1]})\n` +
      `  : []`,
  },
];
