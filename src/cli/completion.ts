/**
 * Shell completion, made from the command table: one bash function that completes the commands,
 * each command's flags, the values of flags that have choices, and files or directories where a
 * flag or argument takes one. zsh runs the same function through its bashcompinit layer, so the
 * two shells complete the same words.
 */
import { usageError, type FlagSpec, type ParsedArgs } from './args.js';
import { groups, withHelp, type CommandSpec } from './spec.js';
import type { Io } from './io.js';

const FUNCTION = '_lb_probe_webhook';

function words(list: readonly string[]): string {
  return list.join(' ');
}

function flagNames(flag: FlagSpec): string[] {
  return [`--${flag.name}`, ...(flag.short === undefined ? [] : [`-${flag.short}`])];
}

/** valueCompletion is the shell code that completes the value of a flag (or a positional argument). */
function valueCompletion(choices: readonly string[] | undefined, complete: 'file' | 'dir' | undefined): string {
  if (choices !== undefined) return `COMPREPLY=( $(compgen -W "${words(choices)}" -- "$cur") )`;
  if (complete === 'file') return 'COMPREPLY=( $(compgen -f -- "$cur") )';
  if (complete === 'dir') return 'COMPREPLY=( $(compgen -d -- "$cur") )';
  return 'COMPREPLY=()';
}

function commandCase(command: CommandSpec, commands: readonly CommandSpec[]): string {
  const flags = withHelp(command);
  const valued = flags.filter((f) => f.type === 'string');
  const positional =
    command.complete === 'commands'
      ? valueCompletion(
          commands.map((c) => c.name.split(' ')[0] as string).filter((w, i, all) => all.indexOf(w) === i),
          undefined,
        )
      : command.complete === 'file'
        ? valueCompletion(undefined, 'file')
        : command.complete === undefined
          ? 'COMPREPLY=()'
          : valueCompletion(command.complete, undefined);
  const lines = [`    '${command.name}')`];
  if (valued.length > 0) {
    lines.push('      case "$prev" in');
    for (const flag of valued) lines.push(`        ${flagNames(flag).join('|')}) ${valueCompletion(flag.choices, flag.complete)}; return 0 ;;`);
    lines.push('      esac');
  }
  lines.push(`      if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "${words(flags.flatMap((f) => `--${f.name}`))}" -- "$cur") ); return 0; fi`);
  lines.push(`      ${positional}`);
  lines.push('      ;;');
  return lines.join('\n');
}

/** bashFunction is the completion function both shells run. */
function bashFunction(commands: readonly CommandSpec[]): string {
  const firstWords = [...new Set(commands.map((c) => c.name.split(' ')[0] as string))];
  const groupCases = groups(commands).map((group) => {
    const members = commands.filter((c) => c.name.startsWith(`${group} `)).map((c) => c.name.slice(group.length + 1));
    return `    ${group})\n      if [[ "$COMP_CWORD" -eq 2 ]]; then COMPREPLY=( $(compgen -W "${words(members)}" -- "$cur") ); return 0; fi\n      command="$command \${COMP_WORDS[2]}" ;;`;
  });
  return [
    `${FUNCTION}() {`,
    '  local cur prev command',
    '  cur="${COMP_WORDS[COMP_CWORD]}"',
    '  prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '  if [[ "$COMP_CWORD" -eq 1 ]]; then',
    `    COMPREPLY=( $(compgen -W "${words([...firstWords, '--help', '--version'])}" -- "$cur") )`,
    '    return 0',
    '  fi',
    '  command="${COMP_WORDS[1]}"',
    ...(groupCases.length === 0 ? [] : ['  case "$command" in', ...groupCases, '  esac']),
    '  case "$command" in',
    ...commands.map((c) => commandCase(c, commands)),
    '    *) COMPREPLY=() ;;',
    '  esac',
    '  return 0',
    '}',
  ].join('\n');
}

/** bashCompletion is the bash completion script. */
export function bashCompletion(commands: readonly CommandSpec[]): string {
  return `# bash completion for lb-probe-webhook (lb-probe-webhook completion bash)\n${bashFunction(commands)}\ncomplete -o filenames -F ${FUNCTION} lb-probe-webhook\n`;
}

/** zshCompletion is the zsh completion script: the same function, run by zsh's bashcompinit. */
export function zshCompletion(commands: readonly CommandSpec[]): string {
  return [
    '#compdef lb-probe-webhook',
    '# zsh completion for lb-probe-webhook (lb-probe-webhook completion zsh): the bash completion, run by bashcompinit',
    'autoload -U +X bashcompinit && bashcompinit',
    bashFunction(commands),
    `complete -o filenames -F ${FUNCTION} lb-probe-webhook`,
    '',
  ].join('\n');
}

/** runCompletion prints the completion script for the shell named. */
export async function runCompletion(args: ParsedArgs, io: Io, commands: readonly CommandSpec[]): Promise<number> {
  const [shell, ...extra] = args.positionals;
  if (shell === undefined || extra.length > 0) throw usageError('give one shell: bash or zsh');
  if (shell === 'bash') io.stdout.write(bashCompletion(commands));
  else if (shell === 'zsh') io.stdout.write(zshCompletion(commands));
  else throw usageError(`no completion for ${JSON.stringify(shell)}; bash or zsh`);
  return Promise.resolve(0);
}
