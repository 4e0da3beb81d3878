/**
 * A private containerd for one pull pass: root, state, sockets and log in its own directory, the
 * CRI plugin disabled (no kubelet here, and it would want CNI), images unpacked with the native
 * snapshotter (no overlayfs needed). Pulls run in `ctr`, which resolves and fetches in-process
 * with `--hosts-dir`, exactly as the CRI plugin does with `config_path`.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ProcessGroup, logTail, type StartedProcess } from './processes.js';
import { offlineEnv, type Tripwire } from './tripwire.js';

const run = promisify(execFile);
const CTR_TIMEOUT_MS = 120_000;
const START_DEADLINE_MS = 20_000;

export interface ContainerdImage {
  ref: string;
  mediaType: string;
  digest: string;
}

export class Containerd {
  readonly #processes = new ProcessGroup();
  readonly #env: NodeJS.ProcessEnv;

  private constructor(
    readonly dir: string,
    readonly socket: string,
    tripwire: Tripwire,
  ) {
    this.#env = offlineEnv(tripwire, { HOME: dir });
  }

  static async start(dir: string, tripwire: Tripwire): Promise<Containerd> {
    mkdirSync(join(dir, 'root'), { recursive: true });
    mkdirSync(join(dir, 'state'), { recursive: true });
    const containerd = new Containerd(dir, join(dir, 'containerd.sock'), tripwire);
    writeFileSync(join(dir, 'config.toml'), containerd.#config());
    const started = containerd.#processes.start('containerd', 'containerd', ['--config', join(dir, 'config.toml')], join(dir, 'containerd.log'), containerd.#env);
    try {
      await containerd.#waitReady(started);
    } catch (error) {
      await containerd.stop();
      throw error;
    }
    return containerd;
  }

  #config(): string {
    return [
      'version = 2',
      `root = "${join(this.dir, 'root')}"`,
      `state = "${join(this.dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${this.socket}"`,
      '[ttrpc]',
      `  address = "${this.socket}.ttrpc"`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = "${join(this.dir, 'opt')}"`,
      '',
    ].join('\n');
  }

  async #waitReady(started: StartedProcess): Promise<void> {
    const deadline = Date.now() + START_DEADLINE_MS;
    while (Date.now() < deadline) {
      if (started.child.exitCode !== null) break;
      if (await this.ctr(['version']).then(() => true, () => false)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`containerd did not answer on ${this.socket} within ${START_DEADLINE_MS} ms:\n${logTail(started.logFile)}`);
  }

  async ctr(args: string[]): Promise<string> {
    try {
      const { stdout } = await run('ctr', ['--address', this.socket, ...args], { env: this.#env, timeout: CTR_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const failure = error as { stderr?: string; stdout?: string; message: string };
      throw new Error(`ctr ${args.join(' ')} failed: ${failure.stderr?.trim() || failure.stdout?.trim() || failure.message}`);
    }
  }

  /** `ctr image pull` (fetch and unpack) into `namespace`; platform defaults to the host's. */
  async pull(namespace: string, ref: string, hostsDir: string, platform?: string): Promise<void> {
    const platformArgs = platform ? ['--platform', platform] : [];
    await this.ctr(['--namespace', namespace, 'image', 'pull', '--hosts-dir', hostsDir, '--snapshotter', 'native', ...platformArgs, ref]);
  }

  /** `ctr image ls`: REF TYPE DIGEST SIZE PLATFORMS LABELS. */
  async images(namespace: string): Promise<ContainerdImage[]> {
    const lines = (await this.ctr(['--namespace', namespace, 'image', 'ls'])).trim().split('\n').slice(1);
    return lines.filter(Boolean).map((line) => {
      const [ref = '', mediaType = '', digest = ''] = line.split(/\s+/);
      return { ref, mediaType, digest };
    });
  }

  async image(namespace: string, ref: string): Promise<ContainerdImage> {
    const found = (await this.images(namespace)).find((image) => image.ref === ref);
    if (!found) throw new Error(`containerd namespace ${namespace} has no image ${ref}`);
    return found;
  }

  /** Digests in the content store (`ctr content ls`: DIGEST SIZE AGE LABELS). */
  async contentDigests(namespace: string): Promise<Set<string>> {
    const lines = (await this.ctr(['--namespace', namespace, 'content', 'ls'])).trim().split('\n').slice(1);
    return new Set(lines.map((line) => line.split(/\s+/)[0] ?? '').filter((digest) => digest.startsWith('sha256:')));
  }

  /** Snapshots the native snapshotter holds: one per unpacked layer. */
  async snapshotCount(namespace: string): Promise<number> {
    const lines = (await this.ctr(['--namespace', namespace, 'snapshots', '--snapshotter', 'native', 'ls'])).trim().split('\n').slice(1);
    return lines.filter(Boolean).length;
  }

  async stop(): Promise<void> {
    await this.#processes.stopAll();
  }
}
