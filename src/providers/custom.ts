/**
 * The custom provider: annotation templates from the policy's `custom` section, per probe intent,
 * per affected port and per Service, with {port}, {readinessPort} and {readinessPath} filled in.
 */
import { isQualifiedName } from '../core/names.js';
import type { SettingsPath, SettingsReader } from './provider.js';
import { describePort, result, type AnnotationGroup, type Provider } from './provider.js';

/** TEMPLATE_PLACEHOLDERS lists the placeholders custom templates may use. */
export const TEMPLATE_PLACEHOLDERS = ['port', 'readinessPort', 'readinessPath'] as const;

/** CustomTemplates are the custom provider's annotation templates for one probe intent. */
export interface CustomTemplates {
  /** perPort is applied once per affected port, with {port} filled in. */
  readonly perPort: Readonly<Record<string, string>>;
  /** perService is applied once per Service. */
  readonly perService: Readonly<Record<string, string>>;
}

/** CUSTOM_INTENTS are the probe intents the `custom` section has templates for. */
export const CUSTOM_INTENTS = ['tcp', 'readiness', 'kube-proxy'] as const;

/** CustomSettings is the policy's `custom` section: templates per probe intent. */
export type CustomSettings = { readonly [intent in (typeof CUSTOM_INTENTS)[number]]?: CustomTemplates };

/** fillTemplate replaces every {name} in a template with its value; unknown names are left as they are. */
export function fillTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{([A-Za-z]+)\}/g, (whole, name: string) => values[name] ?? whole);
}

function fillMap(map: Readonly<Record<string, string>>, values: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [fillTemplate(k, values), fillTemplate(v, values)]));
}

function templateMap(value: unknown, path: SettingsPath, perPort: boolean, reader: SettingsReader): Record<string, string> {
  const map = reader.stringMap(value, path);
  const allowed: readonly string[] = perPort ? TEMPLATE_PLACEHOLDERS : TEMPLATE_PLACEHOLDERS.filter((p) => p !== 'port');
  for (const [key, template] of Object.entries(map)) {
    for (const text of [key, template]) {
      for (const match of text.matchAll(/\{([^}]*)\}/g)) {
        const name = match[1] ?? '';
        if (!allowed.includes(name)) {
          reader.problem([...path, key], `unknown placeholder {${name}}; allowed here: ${allowed.map((p) => `{${p}}`).join(', ')}`);
        }
      }
    }
    const sample = fillTemplate(key, { port: '80', readinessPort: 'status-port', readinessPath: '/healthz/ready' });
    if (!isQualifiedName(sample)) reader.problem([...path, key], `is not a valid annotation key once filled in (${sample})`);
  }
  return map;
}

/** custom is the template-driven provider. */
export const custom: Provider<CustomSettings> = {
  name: 'custom',
  title: 'custom',
  settings: {
    key: 'custom',
    read(value, reader) {
      const map = reader.mapping(value, ['custom'], CUSTOM_INTENTS);
      const out: { -readonly [intent in keyof CustomSettings]: CustomTemplates } = {};
      for (const intent of CUSTOM_INTENTS) {
        const section = reader.mapping(map?.[intent], ['custom', intent], ['perPort', 'perService']);
        if (section === undefined) continue;
        out[intent] = {
          perPort: templateMap(section['perPort'], ['custom', intent, 'perPort'], true, reader),
          perService: templateMap(section['perService'], ['custom', intent, 'perService'], false, reader),
        };
      }
      const hasTemplates = Object.values(out).some((t) => Object.keys(t.perPort).length + Object.keys(t.perService).length > 0);
      if (reader.provider === 'custom' && !hasTemplates) {
        reader.problem(['custom'], 'provider "custom" needs at least one template under custom.tcp, custom.readiness or custom.kube-proxy');
      }
      if (reader.provider !== undefined && reader.provider !== 'custom' && hasTemplates) {
        reader.problem(['custom'], `templates are only read with provider "custom", not "${reader.provider}"`);
      }
      return out;
    },
  },
  annotate({ target, intent, readiness, settings }) {
    const templates = settings[intent];
    if (templates === undefined) return result({ notes: [`custom: no templates for probe ${intent}; nothing to change`] });
    const endpoint = 'check' in readiness ? { port: readiness.check.ref, path: readiness.check.path } : readiness.endpoint;
    const shared = { readinessPort: String(endpoint.port), readinessPath: endpoint.path };
    const groups: AnnotationGroup[] = [];
    if (Object.keys(templates.perPort).length > 0) {
      for (const port of target.affected) {
        groups.push({
          annotations: fillMap(templates.perPort, { ...shared, port: String(port.port) }),
          reason: `custom ${intent} probe annotations for ${describePort(port)}`,
        });
      }
    }
    if (Object.keys(templates.perService).length > 0) {
      groups.push({ annotations: fillMap(templates.perService, shared), reason: `custom ${intent} probe annotations for the Service` });
    }
    return result({ groups });
  },
};
