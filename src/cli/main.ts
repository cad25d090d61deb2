#!/usr/bin/env node
/**
 * The lb-probe-webhook command. Exit codes: 0 success (check: nothing to change), 1 check or audit
 * found changes, 2 usage, policy, input, certificate or API error (see failure.ts).
 */
import { EXIT_ERROR, reportError } from './failure.js';
import type { Io } from './io.js';

const USAGE = `Usage: lb-probe-webhook <command> [flags]

Commands:
  serve   --policy FILE --tls-cert FILE --tls-key FILE [--port 9443] [--health-port 8080] [--address 0.0.0.0]
          [--reload-interval 5s] [--shutdown-delay 5s] [--shutdown-grace 20s]
          Serve POST /mutate over HTTPS; /healthz, /readyz and /metrics over plain HTTP.
          Policy and certificate files are reloaded when they change.
  render  --policy FILE [--max-input-bytes 64Mi] [--max-document-bytes 3Mi] [FILE...]
          Print the manifests (stdin when no FILE, or FILE -) with the mutation applied as at CREATE.
  check   --policy FILE [--max-input-bytes 64Mi] [--max-document-bytes 3Mi] [FILE...]
          Print each change the policy would make; exit 1 when there is any, 0 when none.
  audit   --policy FILE [--namespace NS] [-o table|json] [--fix] [--kubeconfig FILE]
          [--request-timeout 30s] [--max-pages 100]
          List the Services and Gateways in the cluster that the policy would change; with --fix,
          apply exactly that (server-side apply, field manager lb-probe-webhook, after a dry run).
          Exit 1 when something would change.
  export  admission-policy --policy FILE [--api-version v1|v1beta1] [--namespaces opt-in|cluster-wide] [--name NAME]
          Print a MutatingAdmissionPolicy and its binding that make the policy's changes in the
          API server itself; settings it cannot do exactly are refused, one line each.
  certs   --out DIR --dns NAME [--dns NAME...] [--ip IP...] [--days 365] [--ca-days 3650]
          [--ca-cert FILE --ca-key FILE] [--if-missing]
          Write ca.crt, ca.key, tls.crt and tls.key for the webhook's serving certificate.

Exit codes: 0 ok, 1 check or audit found changes, 2 error (one line naming the file or flag;
LOG_LEVEL=debug adds the stack).
`;

async function main(argv: readonly string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  // Each command loads only its own modules: serve never pays for the Kubernetes client that audit needs.
  switch (command) {
    case 'serve':
      return (await import('./serve.js')).runServe(rest, io);
    case 'render':
      return (await import('./manifests.js')).runRender(rest, io);
    case 'check':
      return (await import('./manifests.js')).runCheck(rest, io);
    case 'certs':
      return (await import('./certs.js')).runCerts(rest, io);
    case 'audit':
      return (await import('./audit.js')).runAudit(rest, io);
    case 'export':
      return (await import('./export.js')).runExport(rest, io);
    case 'help':
    case '--help':
    case '-h':
      io.stdout.write(USAGE);
      return 0;
    case undefined:
      io.stderr.write(USAGE);
      return EXIT_ERROR;
    default:
      io.stderr.write(`lb-probe-webhook: unknown command ${JSON.stringify(command)} (\`lb-probe-webhook help\` lists the commands)\n`);
      return EXIT_ERROR;
  }
}

const io: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
const command = process.argv[2];
if (command !== 'serve') {
  // serve keeps Node's own crash report; the short-lived commands turn even an unforeseen error into one line.
  process.on('uncaughtException', (err: unknown) => process.exit(reportError(err, io, command)));
  // A reader that goes away (`render ... | head`) ends the output, not in an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? (process.exitCode ?? 0) : reportError(err, io, command)));
}
main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = reportError(err, io, command);
  },
);
