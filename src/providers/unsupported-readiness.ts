/**
 * Clouds whose default probe already avoids the gateway's GET / and that cannot express a
 * readiness probe at admission time: a TCP intent needs nothing, a readiness intent gets a
 * warning that says why.
 */
import { defaultProbeIsRight, readinessUnsupported, type Provider } from './provider.js';

/** tcpDefaultProvider builds such a provider from the cloud's default probe and the reason readiness cannot be set. */
export function tcpDefaultProvider(name: string, title: string, defaultProbe: string, whyNoReadiness: string): Provider {
  return {
    name,
    title,
    annotate({ intent }) {
      return intent === 'tcp' ? defaultProbeIsRight(title, defaultProbe) : readinessUnsupported(title, whyNoReadiness);
    },
  };
}
