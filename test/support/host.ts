/**
 * The host changes of the real node (test/support/node.ts), each written to a journal on disk before
 * it is made, and undone in reverse order at the end: also after a failed test, Ctrl-C, or, when the
 * test process was killed outright, at the start of the next run (recover()). Everything here is
 * synchronous, so it also runs in an exit handler.
 *
 * What is journaled: a network link, a directory created outside the node's own folder, a sysctl's
 * old value, the iptables rules as they were, a folder of mounts, a cgroup, a process (pid and start
 * time, so a recycled pid is never killed), containerd's shims, and the node's folder itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** JOURNAL_DIR holds the journal; on disk, not in /run, so that what a killed run left behind on disk is found too. */
export const JOURNAL_DIR = '/var/tmp/lb-probe-webhook-node';
const journalFile = (dir: string) => join(dir, 'journal.jsonl');

/** Change is one host change and what undoes it. */
export type Change =
  | { readonly kind: 'link'; readonly name: string }
  | { readonly kind: 'dir'; readonly path: string; readonly since: number }
  | { readonly kind: 'sysctl'; readonly key: string; readonly value: string; readonly set?: string }
  | { readonly kind: 'iptables'; readonly family: 'ipv4' | 'ipv6'; readonly tables: readonly string[] }
  | { readonly kind: 'mounts'; readonly under: string }
  | { readonly kind: 'cgroup'; readonly path: string }
  | { readonly kind: 'process'; readonly pid: number; readonly start: string; readonly name: string }
  | { readonly kind: 'shims'; readonly address: string }
  | { readonly kind: 'folder'; readonly path: string };

/** sysctlPath is the /proc/sys file of a dotted sysctl key. */
export const sysctlPath = (key: string): string => join('/proc/sys', ...key.split('.'));

/**
 * processStart is a process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or
 * undefined when it is gone. A zombie counts as gone: it has ended, and only its parent (often this
 * very process, busy undoing) can reap it.
 */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

function run(command: string, args: readonly string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const out = spawnSync(command, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  return { code: out.status, stdout: out.stdout ?? '', stderr: out.stderr ?? (out.error?.message ?? '') };
}

/** mountsUnder lists the mount points at or below a folder, deepest first (from /proc/self/mountinfo). */
export function mountsUnder(folder: string): string[] {
  const decode = (field: string) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => decode(line.split(' ')[4] ?? ''))
    .filter((point) => point === folder || point.startsWith(`${folder}/`))
    .sort((a, b) => b.length - a.length);
}

/** cgroupHierarchies lists where each cgroup hierarchy is mounted (the v1 controllers and the unified one). */
export function cgroupHierarchies(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => / - cgroup2? /.test(line))
    .map((line) => line.split(' ')[4] ?? '');
}

/** cgroupPaths lists a cgroup's folder under every mounted hierarchy that has it. */
export function cgroupPaths(cgroup: string): string[] {
  return cgroupHierarchies()
    .map((mount) => join(mount, cgroup))
    .filter((path) => existsSync(path));
}

function subfoldersDeepestFirst(path: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) walk(join(dir, entry.name));
    out.push(dir);
  };
  walk(path);
  return out;
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** killCgroup SIGKILLs every process in a cgroup tree (every hierarchy), until none is left or 10 s have passed. */
function killCgroup(cgroup: string): void {
  for (let round = 0; round < 100; round++) {
    let alive = 0;
    for (const path of cgroupPaths(cgroup)) {
      for (const dir of subfoldersDeepestFirst(path)) {
        let pids: string[];
        try {
          pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean);
        } catch {
          continue;
        }
        for (const pid of pids) {
          alive++;
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            /* gone */
          }
        }
      }
    }
    if (alive === 0) return;
    sleepMs(100);
  }
}

/** shimPids finds containerd's runc shims that serve one containerd (their command line names its address). */
export function shimPids(address: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (/containerd-shim/.test(argv[0] ?? '') && argv.includes(address)) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/** undo reverses one change; it throws when the change could not be undone. */
function undo(change: Change): void {
  switch (change.kind) {
    case 'process': {
      if (processStart(change.pid) !== change.start) return;
      try {
        process.kill(change.pid, 'SIGKILL');
      } catch {
        return;
      }
      for (let waited = 0; waited < 5000 && processStart(change.pid) === change.start; waited += 50) sleepMs(50);
      return;
    }
    case 'shims':
      for (const pid of shimPids(change.address)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      return;
    case 'cgroup': {
      killCgroup(change.path);
      for (const path of cgroupPaths(change.path)) {
        for (const dir of subfoldersDeepestFirst(path)) {
          for (let attempt = 0; ; attempt++) {
            try {
              rmdirSync(dir);
              break;
            } catch (err: unknown) {
              if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
              if (attempt >= 50) throw new Error(`cgroup ${dir} could not be removed: ${(err as Error).message}`, { cause: err });
              sleepMs(100);
            }
          }
        }
      }
      return;
    }
    case 'mounts':
      for (const point of mountsUnder(change.under)) {
        const out = run('umount', ['--lazy', point]);
        if (out.code !== 0 && !/not mounted|no mount point/.test(out.stderr)) throw new Error(`umount ${point}: ${out.stderr.trim()}`);
      }
      return;
    case 'link': {
      const out = run('ip', ['link', 'delete', change.name]);
      if (out.code !== 0 && !/Cannot find device/.test(out.stderr)) throw new Error(`ip link delete ${change.name}: ${out.stderr.trim()}`);
      return;
    }
    case 'sysctl': {
      // Put back only what the node set: a value someone else has set since is theirs.
      if (!existsSync(sysctlPath(change.key))) return;
      const now = readFileSync(sysctlPath(change.key), 'utf8').trim();
      if (now !== change.value && (change.set === undefined || now === change.set)) writeFileSync(sysctlPath(change.key), change.value);
      return;
    }
    case 'iptables': {
      // Only Kubernetes' own chains and the rules that jump to them go (KUBE-*, CNI-*), from the rules
      // as they are now: whatever else is there stays. A table the node made, empty after that, goes.
      const [save, restore, nftFamily] = change.family === 'ipv4' ? ['iptables-save', 'iptables-restore', 'ip'] : ['ip6tables-save', 'ip6tables-restore', 'ip6'];
      const now = run(save, []).stdout;
      const kept = withoutKubernetesRules(now);
      if (kept !== now) {
        const out = run(restore, [], kept);
        if (out.code !== 0) throw new Error(`${restore}: ${out.stderr.trim()}`);
      }
      for (const [table, rules] of tableRules(kept)) {
        if (change.tables.includes(table) || rules > 0) continue;
        const out = run('nft', ['delete', 'table', nftFamily, table]);
        if (out.code !== 0) throw new Error(`nft delete table ${nftFamily} ${table}: ${out.stderr.trim()}`);
      }
      return;
    }
    case 'dir':
      // Only a directory made after the change was journaled is the node's (a later install's is not).
      if (!existsSync(change.path) || statSync(change.path).birthtimeMs < change.since - 1000) return;
      removeUnmounted(change.path);
      return;
    case 'folder':
      removeUnmounted(change.path);
      return;
  }
}

/** removeUnmounted removes a folder recursively, but never through a mount: it throws while anything is mounted below it. */
function removeUnmounted(path: string): void {
  const mounted = mountsUnder(path);
  if (mounted.length > 0) throw new Error(`${path} still has mounts (${mounted.slice(0, 3).join(', ')}): not removed`);
  rmSync(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}

/** KUBERNETES_CHAIN names the chains kubelet, kube-proxy and the CNI plugins make. */
const KUBERNETES_CHAIN = /^(KUBE|CNI)-/;

/** withoutKubernetesRules drops from iptables-save output the Kubernetes chains, their rules, and every rule that jumps to one. */
export function withoutKubernetesRules(rules: string): string {
  return rules
    .split('\n')
    .filter((line) => {
      if (line.startsWith(':')) return !KUBERNETES_CHAIN.test(line.slice(1));
      if (!line.startsWith('-A ')) return true;
      const words = line.split(' ');
      if (KUBERNETES_CHAIN.test(words[1] ?? '')) return false;
      const target = words.findIndex((w) => w === '-j' || w === '-g');
      return !(target >= 0 && KUBERNETES_CHAIN.test(words[target + 1] ?? ''));
    })
    .join('\n');
}

/** tableRules counts the rules (-A lines) of each table in iptables-save output. */
function tableRules(rules: string): Map<string, number> {
  const tables = new Map<string, number>();
  let table = '';
  for (const line of rules.split('\n')) {
    if (line.startsWith('*')) tables.set((table = line.slice(1)), 0);
    else if (line.startsWith('-A ')) tables.set(table, (tables.get(table) ?? 0) + 1);
  }
  return tables;
}

/** iptablesTables lists the tables iptables-save (or ip6tables-save) shows now. */
export function iptablesTables(family: 'ipv4' | 'ipv6'): string[] {
  return [...tableRules(run(family === 'ipv4' ? 'iptables-save' : 'ip6tables-save', []).stdout).keys()];
}

/** stripComments drops iptables-save's comment lines (dates) and packet counters, leaving the rules. */
export function stripComments(rules: string): string {
  return rules
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .map((line) => line.replace(/\[\d+:\d+\]$/, ''))
    .join('\n');
}


/** HostJournal records changes before they are made and undoes them all, last first. */
export class HostJournal {
  private readonly changes: Change[] = [];
  private readonly file: string;

  /** The journal lives in dir (JOURNAL_DIR unless a test gives its own); a journal left there must be recovered first. */
  constructor(dir = JOURNAL_DIR) {
    mkdirSync(dir, { recursive: true });
    this.file = journalFile(dir);
    if (existsSync(this.file)) throw new Error(`${this.file} exists: call HostJournal.recover() first`);
    writeFileSync(this.file, '');
  }

  /** record writes a change to the journal; call it before making the change. */
  record(change: Change): void {
    this.changes.push(change);
    appendFileSync(this.file, `${JSON.stringify(change)}\n`);
  }

  /** recordProcess records a process that was started, by pid and start time. */
  recordProcess(pid: number | undefined, name: string): void {
    if (pid === undefined) return;
    const start = processStart(pid);
    if (start !== undefined) this.record({ kind: 'process', pid, start, name });
  }

  /** undoAll undoes every change, last first, and removes the journal; it throws naming what could not be undone. */
  undoAll(): void {
    HostJournal.replay(this.changes, this.file);
  }

  /** recover undoes what a previous run journaled in dir and never undid (it was killed); it returns how many changes it undid. */
  static recover(dir = JOURNAL_DIR): number {
    const file = journalFile(dir);
    if (!existsSync(file)) return 0;
    const changes = readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as Change];
        } catch {
          // The last line of a run killed while writing it; that change was never made.
          return [];
        }
      });
    HostJournal.replay(changes, file);
    return changes.length;
  }

  private static replay(changes: readonly Change[], file: string): void {
    const failures: string[] = [];
    for (const change of [...changes].reverse()) {
      try {
        undo(change);
      } catch (err: unknown) {
        failures.push(`${change.kind}: ${(err as Error).message}`);
      }
    }
    if (failures.length > 0) throw new Error(`the host could not be fully restored (journal kept in ${file}):\n${failures.join('\n')}`);
    unlinkSync(file);
  }
}

/** HostSnapshot is what the node may change on the host, read before it starts, to prove afterwards that it was all undone. */
export interface HostSnapshot {
  readonly links: string[];
  readonly mounts: number;
  readonly iptables: string;
  readonly ip6tables: string;
  readonly sysctls: Record<string, string>;
  readonly paths: Record<string, boolean>;
}

/** WATCHED_SYSCTLS are the sysctls kubelet (setupKernelTunables), kube-proxy and the CNI bridge plugin may set. */
export const WATCHED_SYSCTLS = [
  'vm.overcommit_memory',
  'vm.panic_on_oom',
  'kernel.panic',
  'kernel.panic_on_oops',
  'kernel.keys.root_maxkeys',
  'kernel.keys.root_maxbytes',
  'net.ipv4.ip_forward',
  'net.ipv4.conf.all.route_localnet',
  'net.ipv4.conf.all.forwarding',
  'net.ipv6.conf.all.forwarding',
  'net.bridge.bridge-nf-call-iptables',
  'net.bridge.bridge-nf-call-ip6tables',
  'net.netfilter.nf_conntrack_max',
  'net.netfilter.nf_conntrack_tcp_timeout_established',
  'net.netfilter.nf_conntrack_tcp_timeout_close_wait',
];

/**
 * NODE_PATHS are the host paths the node's kubelet and containerd make outside the folders they are
 * given (fixed in their code: the Pod log links, the CNI cache, the shims' sockets, the kubelet's
 * device-plugins folder); the journal removes them when the run made them.
 */
export const NODE_PATHS = ['/var/log/pods', '/var/log/containers', '/var/lib/cni', '/run/containerd', '/var/lib/kubelet'];

/** WATCHED_PATHS are NODE_PATHS and the other places a kubelet or containerd may write by default: the host check fails if any appears. */
export const WATCHED_PATHS = [...NODE_PATHS, '/var/lib/kubelet', '/usr/libexec/kubernetes', '/etc/cni', '/opt/cni', '/opt/containerd', '/var/run/netns', '/run/netns', '/var/lib/containerd'];

/**
 * NODE_SYSCTL_VALUES are the values the node sets: the kubelet's kernel defaults (setupKernelTunables,
 * protectKernelDefaults false) and the CNI bridge's forwarding. The journal puts a sysctl back only
 * while it still holds that value.
 */
export const NODE_SYSCTL_VALUES: Readonly<Record<string, string>> = {
  'vm.overcommit_memory': '1',
  'vm.panic_on_oom': '0',
  'kernel.panic': '10',
  'kernel.panic_on_oops': '1',
  'kernel.keys.root_maxkeys': '1000000',
  'kernel.keys.root_maxbytes': '25000000',
  'net.ipv4.ip_forward': '1',
  'net.ipv4.conf.all.forwarding': '1',
};

/** snapshotHost reads the host state that the node could change. */
export function snapshotHost(): HostSnapshot {
  const sysctls: Record<string, string> = {};
  for (const key of WATCHED_SYSCTLS) {
    try {
      sysctls[key] = readFileSync(sysctlPath(key), 'utf8').trim();
    } catch {
      /* absent on this kernel */
    }
  }
  const paths: Record<string, boolean> = {};
  for (const path of WATCHED_PATHS) paths[path] = existsSync(path);
  return {
    links: execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
      .filter(Boolean)
      .sort(),
    mounts: readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).length,
    iptables: stripComments(run('iptables-save', []).stdout),
    ip6tables: stripComments(run('ip6tables-save', []).stdout),
    sysctls,
    paths,
  };
}

/** diffHost names every difference between two snapshots, one line each. */
export function diffHost(before: HostSnapshot, after: HostSnapshot): string[] {
  const out: string[] = [];
  if (before.links.join() !== after.links.join()) out.push(`network links: ${before.links.join(' ')} before, ${after.links.join(' ')} after`);
  if (before.mounts !== after.mounts) out.push(`mounts: ${before.mounts} before, ${after.mounts} after`);
  if (before.iptables !== after.iptables) out.push('iptables rules differ');
  if (before.ip6tables !== after.ip6tables) out.push('ip6tables rules differ');
  for (const key of Object.keys(before.sysctls)) if (before.sysctls[key] !== after.sysctls[key]) out.push(`sysctl ${key}: ${before.sysctls[key]} before, ${after.sysctls[key]} after`);
  for (const path of Object.keys(before.paths)) if (before.paths[path] !== after.paths[path]) out.push(`${path}: ${before.paths[path] ? 'present' : 'absent'} before, ${after.paths[path] ? 'present' : 'absent'} after`);
  return out;
}

/** isDirectory is true for an existing directory. */
export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
