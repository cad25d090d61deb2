#!/usr/bin/env node
/**
 * The lb-probe-webhook command. Exit codes: 0 success (check: nothing to change), 1 check found
 * changes, 2 usage, policy, input or certificate error.
 */
import { describeError, ErrorCode, isWebhookError } from '../errors.js';

const USAGE = `Usage: lb-probe-webhook <command> [flags]

Commands:
  serve   --policy FILE --tls-cert FILE --tls-key FILE [--port 9443] [--health-port 8080] [--address 0.0.0.0]
          [--reload-interval 5s] [--shutdown-delay 5s] [--shutdown-grace 20s]
          Serve POST /mutate over HTTPS; /healthz, /readyz and /metrics over plain HTTP.
          Policy and certificate files are reloaded when they change.
  render  --policy FILE [FILE...]
          Print the manifests (stdin when no FILE) with the mutation applied as at CREATE.
  check   --policy FILE [FILE...]
          Print each change the policy would make; exit 1 when there is any, 0 when none.
  audit   --policy FILE [--namespace NS] [-o table|json] [--fix] [--kubeconfig FILE]
          List the Services and Gateways in the cluster that the policy would change; with --fix,
          apply exactly that (server-side apply, field manager lb-probe-webhook, after a dry run).
          Exit 1 when something would change.
  certs   --out DIR --dns NAME [--dns NAME...] [--ip IP...] [--days 365] [--ca-days 3650]
          [--ca-cert FILE --ca-key FILE] [--if-missing]
          Write ca.crt, ca.key, tls.crt and tls.key for the webhook's serving certificate.

Exit codes: 0 ok, 1 check or audit found changes, 2 error.
`;

/** Io is the process surface the commands use, injected so the commands never reach for globals. */
export interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
}

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
    case 'help':
    case '--help':
    case '-h':
      io.stdout.write(USAGE);
      return 0;
    case undefined:
      io.stderr.write(USAGE);
      return 2;
    default:
      io.stderr.write(`lb-probe-webhook: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

const io: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
main(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    io.stderr.write(`lb-probe-webhook: ${describeError(err)}\n`);
    if (isWebhookError(err) && err.code === ErrorCode.USAGE.code) io.stderr.write(`\n${USAGE}`);
    if (!isWebhookError(err)) io.stderr.write(`${(err as Error).stack ?? ''}\n`);
    process.exitCode = 2;
  },
);
