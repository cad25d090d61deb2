/**
 * The provider registry. Adding a cloud is one new module and one line here; a provider with
 * settings declares its own policy section, which the parser then accepts and validates.
 */
import { alibaba } from './alibaba.js';
import { aws } from './aws.js';
import { azure } from './azure.js';
import { custom } from './custom.js';
import { digitalocean } from './digitalocean.js';
import { gcp } from './gcp.js';
import { hetzner } from './hetzner.js';
import { ibm } from './ibm.js';
import { linode } from './linode.js';
import { oci } from './oci.js';
import { plug, type PluggedProvider } from './provider.js';

/** PROVIDER_LIST holds every provider, in the order the docs and messages give them. */
const PROVIDER_LIST: readonly PluggedProvider[] = [
  plug(azure),
  plug(aws),
  plug(gcp),
  plug(digitalocean),
  plug(hetzner),
  plug(linode),
  plug(oci),
  plug(alibaba),
  plug(ibm),
  plug(custom),
];

/** PROVIDERS maps each policy `provider` value to its implementation. */
export const PROVIDERS: Readonly<Record<string, PluggedProvider>> = Object.fromEntries(PROVIDER_LIST.map((p) => [p.name, p]));

/** PROVIDER_NAMES lists the valid `provider` values, in registry order. */
export const PROVIDER_NAMES: readonly string[] = Object.keys(PROVIDERS);

/** providerFor returns the provider of a name the policy validated; it throws on an unknown name (a bug). */
export function providerFor(name: string): PluggedProvider {
  const provider = PROVIDERS[name];
  if (provider === undefined) throw new Error(`unknown provider ${name}`);
  return provider;
}
