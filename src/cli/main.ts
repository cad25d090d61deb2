#!/usr/bin/env node
/**
 * The lb-probe-webhook command. It finds the command in the command table (commands.ts), answers
 * --help and --version, checks the flags against the command's declaration, and runs it.
 * Exit codes: 0 success (check: nothing to change), 1 check or audit found changes (or warnings
 * with --strict), 2 usage, policy, input, certificate, environment or API error (see failure.ts).
 */
import { readEnvironment } from '../config.js';
import { parseCommandLine, usageError, wantsHelp } from './args.js';
import { COMMANDS } from './commands.js';
import { EXIT_ERROR, reportError } from './failure.js';
import { commandHelp, programHelp } from './help.js';
import type { Io } from './io.js';
import { findCommand, groups, withHelp } from './spec.js';
import { versionLine } from './version.js';

/** INFORMATIONAL are the commands that run whatever the environment says: they only print. */
const INFORMATIONAL = new Set(['help', 'version', 'completion']);

async function main(argv: readonly string[], io: Io): Promise<number> {
  const [first] = argv;
  if (first === undefined) {
    io.stderr.write(programHelp(COMMANDS));
    return EXIT_ERROR;
  }
  if (first === '--help' || first === '-h') {
    io.stdout.write(programHelp(COMMANDS));
    return 0;
  }
  if (first === '--version') {
    io.stdout.write(`${versionLine()}\n`);
    return 0;
  }
  const found = findCommand(argv, COMMANDS);
  if (found === undefined) {
    if (groups(COMMANDS).includes(first)) {
      const second = argv[1];
      if (second !== undefined && !second.startsWith('-')) throw usageError(`unknown command ${JSON.stringify(`${first} ${second}`)}; \`lb-probe-webhook help ${first}\` lists them`);
      throw usageError(`${first} needs a command; \`lb-probe-webhook help ${first}\` lists them`);
    }
    throw usageError(`unknown command ${JSON.stringify(first)}; \`lb-probe-webhook help\` lists the commands`);
  }
  const { command, rest } = found;
  if (wantsHelp(rest)) {
    io.stdout.write(commandHelp(command));
    return 0;
  }
  // An invalid LOG_LEVEL is one line naming it, before any command runs.
  if (!INFORMATIONAL.has(command.name)) readEnvironment();
  return command.run(parseCommandLine(rest, withHelp(command), command.args !== undefined), io);
}

const io: Io = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };
const argv = process.argv.slice(2);
/** label names the command in messages: the command found, else the first word. */
const label = findCommand(argv, COMMANDS)?.command.name;
if (label !== 'serve') {
  // serve keeps Node's own crash report; the short-lived commands turn even an unforeseen error into one line.
  process.on('uncaughtException', (err: unknown) => process.exit(reportError(err, io, label)));
  // A reader that goes away (`render ... | head`) ends the output, not in an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? (process.exitCode ?? 0) : reportError(err, io, label)));
}
main(argv, io).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = reportError(err, io, label);
  },
);
