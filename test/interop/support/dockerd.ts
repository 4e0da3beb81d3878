/**
 * A private dockerd for one pull pass, run as root without touching the host's docker: data-root,
 * exec-root (and so its managed containerd), socket, pidfile and trust key under its own
 * directory; vfs storage (no overlayfs), no bridge, no iptables. Its HTTP(S) proxy is the tripwire,
 * so a fallback to Docker Hub after a mirror failure is caught instead of sent out.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ProcessGroup, logTail, type StartedProcess } from './processes.js';
import { offlineEnv, type Tripwire } from './tripwire.js';

const run = promisify(execFile);
const DOCKER_TIMEOUT_MS = 120_000;
const START_DEADLINE_MS = 60_000;

/** Thrown when dockerd cannot run here at all, even with an empty daemon.json. */
export class DockerdUnavailableError extends Error {}

export interface DockerdOptions {
  /**
   * A directory to stand in for /etc/docker (e.g. holding `certs.d/<host:port>/ca.crt`): dockerd
   * reads registry CAs only from /etc/docker/certs.d, so it runs in a private mount namespace
   * (`unshare --mount`) where this directory is bind-mounted there. The host's /etc/docker is
   * untouched, and the mount ends with the process.
   */
  etcDocker?: string;
}

export class Dockerd {
  readonly #processes = new ProcessGroup();
  readonly #env: NodeJS.ProcessEnv;
  readonly socket: string;

  private constructor(
    readonly dir: string,
    tripwire: Tripwire,
    readonly options: DockerdOptions = {},
  ) {
    this.socket = join(dir, 'docker.sock');
    this.#env = offlineEnv(tripwire, { HOME: dir, DOCKER_CONFIG: join(dir, 'client') });
  }

  /**
   * Starts dockerd with `daemonJson` (an object: the shipped daemon.json plus test keys). When it
   * does not come up, a bare daemon is tried: if that fails too, this machine cannot run dockerd
   * (DockerdUnavailableError); otherwise the daemon.json is at fault and the first error stands.
   */
  static async start(dir: string, tripwire: Tripwire, daemonJson: Record<string, unknown>, options: DockerdOptions = {}): Promise<Dockerd> {
    const dockerd = new Dockerd(dir, tripwire, options);
    try {
      await dockerd.#startWith(daemonJson, 'dockerd');
      return dockerd;
    } catch (error) {
      await dockerd.stop();
      const bare = new Dockerd(join(dir, 'bare'), tripwire);
      const bareStarted = await bare.#startWith({}, 'dockerd-bare').then(() => true, () => false);
      await bare.stop();
      if (!bareStarted) throw new DockerdUnavailableError(`dockerd cannot run on this machine: ${(error as Error).message}`);
      throw error;
    }
  }

  async #startWith(daemonJson: Record<string, unknown>, name: string): Promise<void> {
    for (const sub of ['data', 'exec', 'client']) mkdirSync(join(this.dir, sub), { recursive: true });
    const configFile = join(this.dir, 'daemon.json');
    // deprecated-key-path keeps dockerd's identity key out of /etc/docker.
    writeFileSync(configFile, JSON.stringify({ ...daemonJson, 'deprecated-key-path': join(this.dir, 'key.json') }, null, 2));
    const args = [
      '--config-file', configFile,
      '--data-root', join(this.dir, 'data'),
      '--exec-root', join(this.dir, 'exec'),
      '--pidfile', join(this.dir, 'dockerd.pid'),
      '--host', `unix://${this.socket}`,
      '--storage-driver', 'vfs',
      '--bridge', 'none',
      '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--userland-proxy=false',
    ];
    const [command, commandArgs] = this.options.etcDocker
      ? // unshare and sh both exec, so the PID stays dockerd's and stopping by PID still works.
        ['unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc/docker && exec dockerd "$@"', this.options.etcDocker, ...args]]
      : ['dockerd', args];
    const started = this.#processes.start(name, command, commandArgs, join(this.dir, 'dockerd.log'), this.#env);
    await this.#waitReady(started);
  }

  async #waitReady(started: StartedProcess): Promise<void> {
    const deadline = Date.now() + START_DEADLINE_MS;
    while (Date.now() < deadline) {
      if (started.child.exitCode !== null) break;
      if (await this.docker(['version']).then(() => true, () => false)) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`dockerd did not answer on ${this.socket} within ${START_DEADLINE_MS} ms:\n${logTail(started.logFile)}`);
  }

  async docker(args: string[]): Promise<string> {
    try {
      const { stdout } = await run('docker', ['--host', `unix://${this.socket}`, ...args], { env: this.#env, timeout: DOCKER_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const failure = error as { stderr?: string; message: string };
      throw new Error(`docker ${args.join(' ')} failed: ${failure.stderr?.trim() || failure.message}`);
    }
  }

  async pull(ref: string): Promise<void> {
    await this.docker(['pull', ref]);
  }

  async repoDigests(ref: string): Promise<string[]> {
    return JSON.parse(await this.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', ref])) as string[];
  }

  /** The image ID: the config digest of the platform image that was pulled. */
  async imageId(ref: string): Promise<string> {
    return (await this.docker(['image', 'inspect', '--format', '{{.Id}}', ref])).trim();
  }

  async stop(): Promise<void> {
    await this.#processes.stopAll();
  }
}
