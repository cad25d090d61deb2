/**
 * ingress-nginx: the controller Service of the kubernetes/ingress-nginx chart, which puts
 * appProtocol http and https on its ports by default (controller.service.appProtocol, chart 4.0.1+).
 * nginx answers GET /healthz with 200 on its traffic ports, while GET / goes to the default backend
 * and its 404 (the AKS outage of Azure/AKS#2903). Readiness is GET /healthz on the Service's own
 * http port, for every affected port: the https port speaks TLS, so a plain HTTP probe there fails.
 */
import type { ServicePort } from '../core/target.js';
import { hasLabels, type Profile } from './profile.js';

/** INGRESS_NGINX_LABELS are the labels the chart puts on the controller Service. */
export const INGRESS_NGINX_LABELS: Readonly<Record<string, string>> = {
  'app.kubernetes.io/name': 'ingress-nginx',
  'app.kubernetes.io/component': 'controller',
};

/** INGRESS_NGINX_HEALTH_PATH is nginx's health endpoint on the traffic ports (ingress-nginx rootfs/etc/nginx/template/nginx.tmpl, default server). */
export const INGRESS_NGINX_HEALTH_PATH = '/healthz';

/** httpPort returns the Service's plain http port: appProtocol http, else the port named http. */
function httpPort(ports: readonly ServicePort[]): ServicePort | undefined {
  const tcp = ports.filter((p) => p.protocol === 'TCP');
  return tcp.find((p) => p.appProtocol?.toLowerCase() === 'http') ?? tcp.find((p) => p.name === 'http');
}

/**
 * ingressNginx is the ingress-nginx controller profile. It needs the http port: the chart's
 * admission webhook Service carries the same labels but only the webhook's port.
 */
export const ingressNginx: Profile = {
  name: 'ingress-nginx',
  recognizes: (target) => target.kind === 'Service' && hasLabels(target, INGRESS_NGINX_LABELS) && httpPort(target.ports) !== undefined,
  plan(target) {
    const port = httpPort(target.ports);
    if (port === undefined) return { tcp: 'the ingress-nginx Service has no http port to probe /healthz on' };
    return { endpoint: { port: port.name ?? port.port, path: INGRESS_NGINX_HEALTH_PATH }, onTrafficPorts: true };
  },
};
