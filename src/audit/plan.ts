/**
 * The audit plan: which objects already in a cluster the policy would change, and the
 * server-side apply configuration that makes exactly those changes. Pure.
 */
import { decide, type AnnotationChange } from '../decision/decide.js';
import { objectAt, stringAt, stringMap, type JsonObject } from '../core/json.js';
import { infrastructureAnnotations } from '../core/target.js';
import type { Policy } from '../policy/schema.js';

/** AuditFinding is one object the policy would change. */
export interface AuditFinding {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly changes: readonly AnnotationChange[];
  readonly warnings: readonly string[];
  /** apply is the server-side apply configuration with only the annotations to add or replace. */
  readonly apply: JsonObject;
}

function added(before: Record<string, string>, after: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(after).filter(([k, v]) => before[k] !== v));
}

/** AuditOptions change how auditObject decides. */
export interface AuditOptions {
  /** policyMode decides in the policy's own mode, as the webhook does (warn then changes nothing); otherwise in enforce mode. */
  readonly policyMode?: boolean;
}

/**
 * auditObject decides on an existing object as on an UPDATE, in enforce mode whatever the policy's
 * mode (unless options.policyMode), and returns a finding when something would change. The apply
 * configuration names only the annotations the decision adds or replaces (for a new
 * spec.infrastructure.annotations map, also the metadata annotations it carries over), so applying
 * it touches nothing else.
 */
export function auditObject(object: JsonObject, policy: Policy, options: AuditOptions = {}): AuditFinding | undefined {
  const decision = decide({ object, operation: 'UPDATE', policy: options.policyMode ? policy : { ...policy, mode: 'enforce' } });
  if (decision.object === undefined || decision.changes.length === 0) return undefined;
  const metadata = objectAt(object, 'metadata');
  const name = stringAt(metadata, 'name') ?? '';
  const namespace = stringAt(metadata, 'namespace') ?? '';
  const metaAdded = added(stringMap(metadata?.['annotations']), stringMap(objectAt(decision.object, 'metadata')?.['annotations']));
  const infraAdded = added(stringMap(infrastructureAnnotations(object)), stringMap(infrastructureAnnotations(decision.object)));
  const apply: JsonObject = {
    apiVersion: stringAt(object, 'apiVersion'),
    kind: stringAt(object, 'kind'),
    metadata: { name, namespace, ...(Object.keys(metaAdded).length > 0 && { annotations: metaAdded }) },
    ...(Object.keys(infraAdded).length > 0 && { spec: { infrastructure: { annotations: infraAdded } } }),
  };
  return { kind: stringAt(object, 'kind') ?? '', namespace, name, changes: decision.changes, warnings: decision.warnings, apply };
}

/** formatTable renders findings as an aligned table, one row per change. */
export function formatTable(findings: readonly AuditFinding[]): string {
  const rows = [['NAMESPACE', 'KIND', 'NAME', 'WHERE', 'ANNOTATION']];
  for (const f of findings) {
    for (const c of f.changes) {
      const where = c.location === 'metadata.annotations' ? 'metadata' : 'spec.infrastructure';
      rows.push([f.namespace, f.kind, f.name, where, `${c.key}=${c.value}${c.previous === undefined ? '' : ` (was ${c.previous})`}`]);
    }
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n';
}
