/**
 * The custom provider: annotation templates from the policy's `custom` section, per probe intent,
 * per affected port and per Service, with {port}, {readinessPort} and {readinessPath} filled in.
 */
import { describePort, result, type AnnotationGroup, type Provider } from './provider.js';

/** TEMPLATE_PLACEHOLDERS lists the placeholders custom templates may use. */
export const TEMPLATE_PLACEHOLDERS = ['port', 'readinessPort', 'readinessPath'] as const;

/** fillTemplate replaces every {name} in a template with its value; unknown names are left as they are. */
export function fillTemplate(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{([A-Za-z]+)\}/g, (whole, name: string) => values[name] ?? whole);
}

function fillMap(map: Readonly<Record<string, string>>, values: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [fillTemplate(k, values), fillTemplate(v, values)]));
}

/** custom is the template-driven provider. */
export const custom: Provider = {
  name: 'custom',
  title: 'custom',
  annotate({ target, intent, readiness, policy }) {
    const templates = policy.custom[intent];
    if (templates === undefined) return result({ notes: [`custom: no templates for probe ${intent}; nothing to change`] });
    const shared = { readinessPort: String(readiness.port), readinessPath: readiness.path };
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
