/** The shape of a command in the command table (commands.ts), and how a command line finds its command. */
import { HELP_FLAG, type FlagSpec, type ParsedArgs } from './args.js';
import type { Io } from './io.js';

/** CommandSpec declares one command. */
export interface CommandSpec {
  /** name is the command as typed: one word, or a group and a command (`export admission-policy`). */
  readonly name: string;
  /** summary is one line for the command list. */
  readonly summary: string;
  /** description is what help prints above the usage: what the command does, its output and its exit codes. */
  readonly description: string;
  /** args names the positional arguments in the usage line (`[FILE|DIR|-]...`); absent: none are taken. */
  readonly args?: string;
  /** complete says what the shell offers for positional arguments: files, the command names, or these words. */
  readonly complete?: 'file' | 'commands' | readonly string[];
  readonly flags: readonly FlagSpec[];
  /** examples are command lines shown in help, each with a comment line before it. */
  readonly examples?: readonly (readonly [comment: string, command: string])[];
  /** run runs the command with its parsed arguments and returns the exit code. */
  readonly run: (args: ParsedArgs, io: Io) => Promise<number>;
}

/** withHelp is a command's flags with the --help every command has. */
export function withHelp(command: CommandSpec): readonly FlagSpec[] {
  return [...command.flags, HELP_FLAG];
}

/**
 * findCommand finds the command a command line names (the longest name that matches its first
 * words) and returns it with the rest of the command line; undefined when none matches.
 */
export function findCommand(argv: readonly string[], commands: readonly CommandSpec[]): { command: CommandSpec; rest: readonly string[] } | undefined {
  let found: { command: CommandSpec; rest: readonly string[] } | undefined;
  for (const command of commands) {
    const words = command.name.split(' ');
    if (words.every((word, i) => argv[i] === word) && (found === undefined || words.length > found.command.name.split(' ').length)) {
      found = { command, rest: argv.slice(words.length) };
    }
  }
  return found;
}

/** groups are the first words of the commands of a group (`export` for `export admission-policy`). */
export function groups(commands: readonly CommandSpec[]): string[] {
  return [...new Set(commands.filter((c) => c.name.includes(' ')).map((c) => c.name.split(' ')[0] as string))];
}
