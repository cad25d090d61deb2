/**
 * Clouds whose default probe already avoids the gateway's GET / and that cannot express a
 * readiness probe at admission time: a TCP intent needs nothing, a readiness intent gets a
 * warning that says why.
 */
import { defaultProbeIsRight, kubeProxyElsewhere, readinessUnsupported, type Provider } from './provider.js';

/**
 * tcpDefaultProvider builds such a provider from the cloud's default probe, the reason readiness
 * cannot be set, and whether the default probe is kube-proxy's /healthz (then the kube-proxy intent
 * needs nothing either).
 */
export function tcpDefaultProvider(name: string, title: string, defaultProbe: string, whyNoReadiness: string, defaultIsKubeProxy = false): Provider {
  return {
    name,
    title,
    annotate({ intent }) {
      if (intent === 'kube-proxy') return kubeProxyElsewhere(title, defaultIsKubeProxy);
      return intent === 'tcp' ? defaultProbeIsRight(title, defaultProbe) : readinessUnsupported(title, whyNoReadiness);
    },
  };
}
