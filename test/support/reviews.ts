/** AdmissionReview builders shaped like the ones kube-apiserver sends. */
import { randomUUID } from 'node:crypto';
import type { JsonObject } from '../../src/core/json.js';

/** review wraps an object in an admission.k8s.io/v1 AdmissionReview request. */
export function review(object: JsonObject | null, operation = 'CREATE', extra: Record<string, unknown> = {}): JsonObject {
  const metadata = (typeof object?.['metadata'] === 'object' && object['metadata'] !== null ? object['metadata'] : {}) as JsonObject;
  const kind = typeof object?.['kind'] === 'string' ? object['kind'] : 'Service';
  const apiVersion = typeof object?.['apiVersion'] === 'string' ? object['apiVersion'] : 'v1';
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: { group, version, kind },
      resource: { group, version, resource: `${kind.toLowerCase()}s` },
      requestKind: { group, version, kind },
      requestResource: { group, version, resource: `${kind.toLowerCase()}s` },
      // The API server sends the name and namespace as strings, whatever an object's metadata holds.
      name: typeof metadata['name'] === 'string' ? metadata['name'] : undefined,
      namespace: typeof metadata['namespace'] === 'string' ? metadata['namespace'] : undefined,
      operation,
      userInfo: { username: 'system:admin', groups: ['system:masters', 'system:authenticated'] },
      object,
      oldObject: operation === 'UPDATE' ? object : null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: operation === 'UPDATE' ? 'UpdateOptions' : 'CreateOptions' },
      ...extra,
    },
  };
}

/** decodePatch returns the JSON patch of an AdmissionReview response, or undefined when it has none. */
export function decodePatch(body: { response?: { patch?: string } }): unknown {
  const patch = body.response?.patch;
  return patch === undefined ? undefined : JSON.parse(Buffer.from(patch, 'base64').toString('utf8'));
}
