/**
 * The webhook's container image as the tests build it: the Dockerfile, through image/build.sh, with
 * buildah and the base that image/base.sh makes from Debian packages (BASE_IMAGE=local), in a buildah
 * store of the suite's own under the cache folder, so nothing lands in the store buildah and podman
 * share. Steps whose inputs did not change (the bases, npm ci) come from that store's layer cache.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CACHE = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'lb-probe-webhook/image');

/** IMAGE_STORE is the suite's buildah store. */
export const IMAGE_STORE = { root: join(CACHE, 'store/root'), runroot: join(CACHE, 'store/run') };

/** BuiltImage is an image in the suite's store, and the same image as a docker-archive. */
export interface BuiltImage {
  /** name is the image as the kubelet knows it once imported (docker.io/library/ is implied). */
  readonly name: string;
  readonly repository: string;
  readonly tag: string;
  readonly archive: string;
  /** seconds is how long the build took. */
  readonly seconds: number;
  /** bytes is the image's size, and baseBytes its base's (what the webhook adds is the difference). */
  readonly bytes: number;
  readonly baseBytes: number;
  /** config is the image's OCI configuration (user, entrypoint, environment). */
  readonly config: { User?: string; Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string };
}

function buildah(args: readonly string[]): string {
  const out = spawnSync('buildah', ['--root', IMAGE_STORE.root, '--runroot', IMAGE_STORE.runroot, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (out.status !== 0) throw new Error(`buildah ${args.join(' ')}: ${out.stderr || out.error?.message}`);
  return out.stdout;
}

const UNITS: Record<string, number> = { B: 1, kB: 1e3, KB: 1e3, MB: 1e6, GB: 1e9 };

/** imageSize is an image's size in bytes, from buildah's rounded figure ("202 MB"). */
function imageSize(name: string): number {
  const [entry] = JSON.parse(buildah(['images', '--json', name])) as { size: string }[];
  const match = /^([\d.]+) ?([kKMG]?B)$/.exec(entry?.size ?? '');
  if (match === null) throw new Error(`buildah gave no size for ${name}`);
  return Math.round(Number(match[1]) * (UNITS[match[2] as string] ?? NaN));
}

/**
 * STORE_LIMIT_BYTES bounds the suite's buildah store. Each source change leaves the layers of the
 * previous build behind; past this size they go (buildah rmi --prune), and the next build makes the
 * cached steps (the bases, npm ci) again, about two minutes.
 */
const STORE_LIMIT_BYTES = 6 * 2 ** 30;

/** removeImage removes a name from the suite's store (its layers stay, for the next build's cache). */
export function removeImage(name: string): void {
  spawnSync('buildah', ['--root', IMAGE_STORE.root, '--runroot', IMAGE_STORE.runroot, 'rmi', name], { stdio: 'ignore' });
}

function storeBytes(): number {
  const out = spawnSync('du', ['-sb', IMAGE_STORE.root], { encoding: 'utf8' });
  return out.status === 0 ? Number(out.stdout.split('\t')[0]) : 0;
}

/** buildImage builds the Dockerfile as repository:tag and writes it as a docker-archive to archive. */
export function buildImage(repository: string, tag: string, archive: string): BuiltImage {
  // Under image/base.sh's lock: no build of another checkout is halfway through its layers meanwhile.
  if (storeBytes() > STORE_LIMIT_BYTES) {
    spawnSync('flock', [join(CACHE, '.base.lock'), 'buildah', '--root', IMAGE_STORE.root, '--runroot', IMAGE_STORE.runroot, 'rmi', '--prune'], { stdio: 'ignore' });
  }
  const name = `${repository}:${tag}`;
  const env = { ...process.env, BASE_IMAGE: 'local', BUILDER: 'buildah', BUILDAH_ROOT: IMAGE_STORE.root, BUILDAH_RUNROOT: IMAGE_STORE.runroot };
  const started = Date.now();
  const out = spawnSync('bash', [join(ROOT, 'image/build.sh'), name, '--archive', archive], { env, encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'] });
  if (out.status !== 0) throw new Error(`image/build.sh ${name} failed with exit ${out.status}`);
  const seconds = (Date.now() - started) / 1000;
  const bases = spawnSync('bash', [join(ROOT, 'image/base.sh')], { env, encoding: 'utf8' });
  const base = /^BASE_IMAGE=(.*)$/m.exec(bases.stdout)?.[1];
  if (base === undefined) throw new Error(`image/base.sh printed no BASE_IMAGE: ${bases.stderr}`);
  const inspected = JSON.parse(buildah(['inspect', '--type', 'image', name])) as { OCIv1: { config: BuiltImage['config'] } };
  return { name, repository, tag, archive, seconds, bytes: imageSize(name), baseBytes: imageSize(base), config: inspected.OCIv1.config };
}
