/**
 * The command table: every command of lb-probe-webhook, its flags and its help, declared once.
 * main.ts dispatches through it, help.ts prints it and completion.ts turns it into bash and zsh
 * completion, so the three never disagree.
 *
 * Adding a command is one entry here: its name (two words for a command of a group, such as
 * `export admission-policy`), a summary, its flags and a `run` that imports its module when the
 * command runs (each command loads only its own modules: serve never pays for the Kubernetes
 * client that audit needs).
 */
import { DEFAULT_MAX_DOCUMENT_BYTES } from '../manifests/process.js';
import { formatSize, type FlagSpec } from './args.js';
import { DEFAULT_MAX_INPUT_BYTES } from './input.js';
import type { CommandSpec } from './spec.js';

const POLICY: FlagSpec = { name: 'policy', type: 'string', value: 'FILE', required: true, complete: 'file', help: 'The policy file (- reads it from stdin)' };
const MAX_INPUT: FlagSpec = { name: 'max-input-bytes', type: 'string', value: 'SIZE', default: formatSize(DEFAULT_MAX_INPUT_BYTES), help: 'The most all inputs together may hold (Ki, Mi, Gi)' };
const MAX_DOCUMENT: FlagSpec = { name: 'max-document-bytes', type: 'string', value: 'SIZE', default: formatSize(DEFAULT_MAX_DOCUMENT_BYTES), help: 'The most one YAML document may hold, the API server’s own limit (Ki, Mi, Gi)' };
const STRICT: FlagSpec = { name: 'strict', type: 'boolean', help: 'Fail (exit 1) on warnings too: an object the provider cannot fix fails the run' };
const MANIFESTS = '[FILE|DIR|-]...';

/** COMMANDS lists every command, in the order help shows them. */
export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'serve',
    summary: 'Serve the admission webhook over HTTPS',
    description:
      'Serve POST /mutate over HTTPS, and /healthz, /readyz and /metrics over plain HTTP on the health port.\n' +
      'The policy, the certificate and the key are reloaded when their files change; one that does not\n' +
      'validate is refused and the last good one keeps serving. SIGTERM or SIGINT drains and stops.',
    flags: [
      { ...POLICY, help: 'The policy file' },
      { name: 'tls-cert', type: 'string', value: 'FILE', required: true, complete: 'file', help: 'The serving certificate (PEM)' },
      { name: 'tls-key', type: 'string', value: 'FILE', required: true, complete: 'file', help: 'The serving certificate’s private key (PEM)' },
      { name: 'port', type: 'string', value: 'N', default: '9443', help: 'The HTTPS port of the webhook (0: any free port)' },
      { name: 'health-port', type: 'string', value: 'N', default: '8080', help: 'The plain-HTTP port of /healthz, /readyz and /metrics' },
      { name: 'address', type: 'string', value: 'IP', default: '0.0.0.0', help: 'The address both ports listen on' },
      { name: 'reload-interval', type: 'string', value: 'DURATION', default: '5s', help: 'How often the policy and certificate files are read for changes' },
      { name: 'shutdown-delay', type: 'string', value: 'DURATION', default: '5s', help: 'How long reviews are still answered after SIGTERM, while endpoints drain' },
      { name: 'shutdown-grace', type: 'string', value: 'DURATION', default: '20s', help: 'How long connections may stay open after that' },
    ],
    examples: [['Serve with the certificates `certs` made', 'lb-probe-webhook serve --policy policy.yaml --tls-cert certs/tls.crt --tls-key certs/tls.key']],
    // serve parses its own flags from the command line (the table has already checked them).
    run: async (args, io) => (await import('./serve.js')).runServe(args.argv, io),
  },
  {
    name: 'render',
    summary: 'Print manifests with the annotations the policy adds',
    args: MANIFESTS,
    complete: 'file',
    description:
      'Print the manifests (files, directories of .yaml, .yml and .json files, or stdin) with the\n' +
      'mutation applied as at CREATE. Only the added annotation lines change; every other byte is\n' +
      'kept. Warnings go to stderr; in mode: warn nothing changes and stderr says what would.\n' +
      'Exit codes: 0 rendered, 1 a warning with --strict, 2 error (nothing is written).',
    flags: [
      POLICY,
      { name: 'output', short: 'o', type: 'string', value: 'FORMAT', choices: ['yaml', 'json'], default: 'yaml', help: 'The output format: the manifests as YAML, or the objects as JSON (one object, or a List)' },
      { name: 'in-place', short: 'i', type: 'boolean', help: 'Rewrite each input file in place (atomically; files with nothing to change are not touched)' },
      STRICT,
      MAX_INPUT,
      MAX_DOCUMENT,
    ],
    examples: [
      ['Commit manifests that already carry the annotations', 'lb-probe-webhook render --policy policy.yaml -i manifests/'],
      ['Render from a pipe', 'helm template my-release chart/ | lb-probe-webhook render --policy policy.yaml'],
    ],
    run: async (args, io) => (await import('./manifests.js')).runRender(args, io),
  },
  {
    name: 'check',
    summary: 'Report what the policy would change; exit 1 when anything',
    args: MANIFESTS,
    complete: 'file',
    description:
      'Print one line per change the policy would make to the manifests (as at CREATE, also in\n' +
      'mode: warn), then a summary. Checking no object the policy handles (an empty input, only\n' +
      'Pods, only ClusterIP Services) is an error unless --allow-empty.\n' +
      'Exit codes: 0 nothing to change, 1 changes (or warnings with --strict), 2 error or nothing checked.',
    flags: [
      POLICY,
      { name: 'output', short: 'o', type: 'string', value: 'FORMAT', choices: ['text', 'json'], default: 'text', help: 'The report format: lines, or one JSON document (docs/cli.md gives its shape)' },
      STRICT,
      { name: 'allow-empty', type: 'boolean', help: 'Exit 0 when no object the policy handles was found, instead of 2' },
      MAX_INPUT,
      MAX_DOCUMENT,
    ],
    examples: [
      ['Fail CI when a manifest lacks what the policy wants', 'lb-probe-webhook check --policy policy.yaml --strict manifests/'],
      ['A report for a CI step to parse', 'lb-probe-webhook check --policy policy.yaml -o json manifests/'],
    ],
    run: async (args, io) => (await import('./manifests.js')).runCheck(args, io),
  },
  {
    name: 'validate',
    summary: 'Check a policy file alone',
    description: 'Read and validate a policy file the way serve does, and report every problem with its line.\nExit codes: 0 valid, 2 invalid.',
    flags: [POLICY],
    examples: [['Validate before applying a new ConfigMap', 'lb-probe-webhook validate --policy policy.yaml']],
    run: async (args, io) => (await import('./validate.js')).runValidate(args, io),
  },
  {
    name: 'audit',
    summary: 'List, or fix, what the policy would change in a cluster',
    description:
      'List the Services and Gateways already in the cluster that the policy would change; with --fix,\n' +
      'apply exactly that (a server-side dry run, then server-side apply with field manager\n' +
      'lb-probe-webhook). Credentials: --kubeconfig, KUBECONFIG, ~/.kube/config, or the pod’s own.\n' +
      'Exit codes: 0 nothing to change (or all fixed), 1 something would change, 2 error.',
    flags: [
      POLICY,
      { name: 'namespace', short: 'n', type: 'string', value: 'NS', help: 'Only this namespace (default: all)' },
      { name: 'output', short: 'o', type: 'string', value: 'FORMAT', choices: ['table', 'json'], default: 'table', help: 'The report format' },
      { name: 'fix', type: 'boolean', help: 'Apply the changes (server-side apply, after a server-side dry run)' },
      { name: 'kubeconfig', type: 'string', value: 'FILE', complete: 'file', help: 'The kubeconfig file' },
      { name: 'context', type: 'string', value: 'NAME', help: 'The kubeconfig context (default: its current context)' },
      { name: 'request-timeout', type: 'string', value: 'DURATION', default: '30s', help: 'The most one API request may take, body included' },
      { name: 'max-pages', type: 'string', value: 'N', default: '100', help: 'The most pages of 500 objects listed per kind' },
      {
        name: 'as-webhook',
        type: 'string',
        value: 'NAME',
        help: 'Decide as the webhook of MutatingWebhookConfiguration NAME would: only objects written since it exists, in the namespaces and with the labels it selects, in the policy’s own mode (the heal job)',
      },
    ],
    examples: [
      ['See what adopting the webhook would change', 'lb-probe-webhook audit --policy policy.yaml --context staging'],
      ['Fix what was admitted while the webhook was down, where it acts (the chart’s heal job)', 'lb-probe-webhook audit --fix --policy policy.yaml --as-webhook lb-probe-webhook'],
    ],
    run: async (args, io) => (await import('./audit.js')).runAudit(args, io),
  },
  {
    name: 'export admission-policy',
    summary: 'Print the policy as a MutatingAdmissionPolicy and its binding',
    description:
      'Print a MutatingAdmissionPolicy and its binding that make the policy’s changes in the API server\n' +
      'itself (Kubernetes 1.36+: v1; 1.34 and 1.35 with the beta enabled: v1beta1), registered as the\n' +
      'webhook is. A setting it cannot do exactly as the webhook does is refused, one line each.\n' +
      'Exit codes: 0 printed, 2 refused or error.',
    flags: [
      POLICY,
      { name: 'api-version', type: 'string', value: 'VERSION', choices: ['v1', 'v1beta1'], default: 'v1', help: 'The admissionregistration.k8s.io version to write' },
      { name: 'namespaces', type: 'string', value: 'MODE', choices: ['opt-in', 'cluster-wide'], default: 'opt-in', help: 'The namespaces it acts in, as the webhook’s mode' },
      { name: 'name', type: 'string', value: 'NAME', default: 'lb-probe-webhook', help: 'The name of the policy and its binding' },
    ],
    examples: [['Enforce in the API server, no webhook', 'lb-probe-webhook export admission-policy --policy policy.yaml | kubectl apply -f -']],
    run: async (args, io) => (await import('./export.js')).runExport(args, io),
  },
  {
    name: 'certs',
    summary: 'Make a CA and the webhook’s serving certificate',
    description:
      'Write ca.crt, ca.key, tls.crt and tls.key (ECDSA P-256) into --out, all or none. With --ca-cert\n' +
      'and --ca-key the serving certificate is signed by that CA (RSA, ECDSA or Ed25519, such as the\n' +
      'CA cert-manager makes), so the caBundle in clusters stays valid. Existing files are never\n' +
      'replaced by a different CA or key without --force.\n' +
      'Exit codes: 0 written or kept, 2 error (nothing is written).',
    flags: [
      { name: 'out', type: 'string', value: 'DIR', required: true, complete: 'dir', help: 'The directory to write the four files into' },
      { name: 'dns', type: 'string', value: 'NAME', multiple: true, help: 'A DNS name of the serving certificate; the first is also its CN' },
      { name: 'ip', type: 'string', value: 'IP', multiple: true, help: 'An IP address of the serving certificate' },
      { name: 'days', type: 'string', value: 'N', default: '365', help: 'Days the serving certificate is valid' },
      { name: 'ca-days', type: 'string', value: 'N', default: '3650', help: 'Days a new CA is valid' },
      { name: 'ca-cert', type: 'string', value: 'FILE', complete: 'file', help: 'Sign with this CA certificate instead of making a new CA' },
      { name: 'ca-key', type: 'string', value: 'FILE', complete: 'file', help: 'The private key of --ca-cert' },
      { name: 'if-missing', type: 'boolean', help: 'Keep existing files that still fit the flags; renew under their CA those that do not' },
      { name: 'force', type: 'boolean', help: 'Replace an existing CA or key (the caBundle in clusters then no longer matches)' },
    ],
    examples: [
      ['A CA and a certificate for the in-cluster Service', 'lb-probe-webhook certs --out certs --dns lb-probe-webhook.lb-probe-webhook.svc'],
      ['Renew the serving certificate under the same CA', 'lb-probe-webhook certs --out certs --dns lb-probe-webhook.lb-probe-webhook.svc --ca-cert certs/ca.crt --ca-key certs/ca.key'],
    ],
    run: async (args, io) => (await import('./certs.js')).runCerts(args, io),
  },
  {
    name: 'version',
    summary: 'Print the version, the Node.js version and the build’s commit',
    description: 'Print the version of lb-probe-webhook, of the Node.js running it, and the commit it was built from when known.',
    flags: [{ name: 'output', short: 'o', type: 'string', value: 'FORMAT', choices: ['text', 'json'], default: 'text', help: 'The output format' }],
    run: async (args, io) => (await import('./version.js')).runVersion(args, io),
  },
  {
    name: 'completion',
    summary: 'Print the shell completion script for bash or zsh',
    args: 'SHELL',
    complete: ['bash', 'zsh'],
    description: 'Print a completion script for bash or zsh, made from the same table as this help.',
    flags: [],
    examples: [
      ['bash, for this shell', 'source <(lb-probe-webhook completion bash)'],
      ['zsh, for every new shell', 'lb-probe-webhook completion zsh > "${fpath[1]}/_lb-probe-webhook"'],
    ],
    run: async (args, io) => (await import('./completion.js')).runCompletion(args, io, COMMANDS),
  },
  {
    name: 'help',
    summary: 'Print help about a command',
    args: '[COMMAND]',
    complete: 'commands',
    description: 'Print the list of commands, or the help of one command (the same as COMMAND --help).',
    flags: [],
    run: async (args, io) => (await import('./help.js')).runHelp(args, io, COMMANDS),
  },
];
