/**
 * DigitalOcean. The default check is HTTP /healthz on kube-proxy (since ccm v0.1.51). A readiness
 * check needs do-loadbalancer-override-health-check present and a health check port that equals a
 * Service port number, which the controller maps to its nodePort.
 */
import { defaultProbeIsRight, kubeProxyElsewhere, readinessUrl, result, type Provider } from './provider.js';

const PREFIX = 'service.beta.kubernetes.io/do-loadbalancer-';

/** digitalocean is the DigitalOcean provider. */
export const digitalocean: Provider = {
  name: 'digitalocean',
  title: 'DigitalOcean',
  annotate({ intent, readiness }) {
    if (intent === 'tcp') return defaultProbeIsRight('DigitalOcean', "the default check is kube-proxy's /healthz");
    if (intent === 'kube-proxy') return kubeProxyElsewhere('DigitalOcean', true);
    if ('missing' in readiness) return result({ warnings: [`DigitalOcean: ${readiness.missing}, so the default check stays`] });
    const { port, path } = readiness.check;
    return result({
      groups: [
        {
          annotations: {
            [`${PREFIX}override-health-check`]: 'true', // presence is what counts; the value is not read
            [`${PREFIX}healthcheck-protocol`]: 'http',
            [`${PREFIX}healthcheck-port`]: String(port.port),
            [`${PREFIX}healthcheck-path`]: path,
          },
          reason: `DigitalOcean checks the nodes with GET ${readinessUrl({ port: port.port, path })}`,
        },
      ],
    });
  },
};
