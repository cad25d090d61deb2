/** Help text, made from the command table: the command list, and each command's usage, flags and examples. */
import { usageError, type FlagSpec, type ParsedArgs } from './args.js';
import { findCommand, groups, withHelp, type CommandSpec } from './spec.js';
import type { Io } from './io.js';

const PROGRAM = 'lb-probe-webhook';

/** WIDTH is the column help text is wrapped at. */
const WIDTH = 100;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line.length === 0 ? word : `${line} ${word}`;
  }
  return [...lines, line];
}

/** table aligns rows of two columns, the right one wrapped within WIDTH. */
function table(rows: readonly (readonly [string, string])[], indent: string): string {
  const left = Math.max(...rows.map(([l]) => l.length));
  const pad = indent.length + left + 3;
  return rows
    .map(([l, r]) => wrap(r, Math.max(WIDTH - pad, 30)).map((part, i) => `${i === 0 ? `${indent}${l.padEnd(left)}   ` : ' '.repeat(pad)}${part}`.trimEnd()).join('\n'))
    .join('\n');
}

function flagLabel(flag: FlagSpec): string {
  const short = flag.short === undefined ? '    ' : `-${flag.short}, `;
  const value = flag.type === 'string' ? ` ${flag.choices?.join('|') ?? flag.value ?? 'VALUE'}` : '';
  return `${short}--${flag.name}${value}`;
}

function flagText(flag: FlagSpec): string {
  const notes = [flag.required === true ? 'required' : undefined, flag.default === undefined ? undefined : `default ${flag.default}`, flag.multiple === true ? 'repeatable' : undefined].filter(
    (n) => n !== undefined,
  );
  return notes.length === 0 ? flag.help : `${flag.help} (${notes.join(', ')})`;
}

/** usageLine is a command's synopsis: its required flags, then [flags], then its arguments. */
export function usageLine(command: CommandSpec): string {
  const required = command.flags.filter((f) => f.required === true).map((f) => `--${f.name} ${f.value ?? 'VALUE'}`);
  const optional = command.flags.some((f) => f.required !== true) ? ['[flags]'] : [];
  return [PROGRAM, command.name, ...required, ...optional, ...(command.args === undefined ? [] : [command.args])].join(' ');
}

/** commandHelp is the full help of one command. */
export function commandHelp(command: CommandSpec): string {
  const parts = [command.description, `Usage:\n  ${usageLine(command)}`, `Flags:\n${table(withHelp(command).map((f) => [flagLabel(f), flagText(f)]), '  ')}`];
  if (command.examples !== undefined && command.examples.length > 0) {
    parts.push(`Examples:\n${command.examples.map(([comment, line]) => `  # ${comment}\n  ${line}`).join('\n\n')}`);
  }
  return `${parts.join('\n\n')}\n`;
}

/** programHelp is the help of the program: what it is, its commands and its exit codes. */
export function programHelp(commands: readonly CommandSpec[]): string {
  return [
    `${PROGRAM} adds the cloud load-balancer health-probe annotations that LoadBalancer Services and\nGateway API Gateways need: as an admission webhook (serve), or offline on manifests (render, check).`,
    `Usage:\n  ${PROGRAM} COMMAND [flags]`,
    `Commands:\n${table(
      commands.map((c) => [c.name, c.summary]),
      '  ',
    )}`,
    `Flags:\n${table(
      [
        ['-h, --help', 'Print help (also after any command)'],
        ['    --version', 'Print the version'],
      ],
      '  ',
    )}`,
    `Run \`${PROGRAM} COMMAND --help\` for the flags of a command.\nExit codes: 0 ok, 1 check or audit found something to change, 2 error (one line naming the file or flag).\nLOG_LEVEL=debug adds the stack of an error.`,
  ].join('\n\n') + '\n';
}

/** runHelp prints the program's help, or a command's (`help render`, `help export admission-policy`). */
export async function runHelp(args: ParsedArgs, io: Io, commands: readonly CommandSpec[]): Promise<number> {
  if (args.positionals.length === 0) {
    io.stdout.write(programHelp(commands));
    return 0;
  }
  const found = findCommand(args.positionals, commands);
  if (found === undefined || found.rest.length > 0) {
    const group = groups(commands).find((g) => g === args.positionals.join(' '));
    if (group !== undefined) {
      io.stdout.write(`Commands of ${PROGRAM} ${group}:\n${table(commands.filter((c) => c.name.startsWith(`${group} `)).map((c) => [c.name, c.summary]), '  ')}\n`);
      return 0;
    }
    throw usageError(`no command ${JSON.stringify(args.positionals.join(' '))}; \`${PROGRAM} help\` lists the commands`);
  }
  io.stdout.write(commandHelp(found.command));
  return Promise.resolve(0);
}
