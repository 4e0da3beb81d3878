/**
 * podman (Debian's 4.3) boxed in, run as root like the other clients here: images, state and
 * temp files under its own directory (vfs storage, no cgroup or event plumbing needed for
 * load/push/pull), its own auth file and an empty registries.conf, and its HTTP(S) proxy the
 * tripwire, so only loopback registries are reached.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { offlineEnv, type Tripwire } from './tripwire.js';

const run = promisify(execFile);
const PODMAN_TIMEOUT_MS = 120_000;

export class Podman {
  readonly #globalArgs: string[];
  readonly #env: NodeJS.ProcessEnv;
  /** podman refuses a runroot longer than 50 characters, so it cannot live under `dir`. */
  readonly #runroot = mkdtempSync(join(tmpdir(), 'podman-run-'));

  private constructor(readonly dir: string, tripwire: Tripwire, registriesConfText = 'unqualified-search-registries = []\n') {
    for (const sub of ['root', 'tmp']) mkdirSync(join(dir, sub), { recursive: true });
    const registriesConf = join(dir, 'registries.conf');
    writeFileSync(registriesConf, registriesConfText);
    writeFileSync(join(dir, 'auth.json'), '{"auths":{}}');
    this.#globalArgs = [
      '--root', join(dir, 'root'), '--runroot', this.#runroot, '--tmpdir', join(dir, 'tmp'),
      '--storage-driver', 'vfs', '--events-backend', 'none', '--cgroup-manager', 'cgroupfs',
    ];
    this.#env = offlineEnv(tripwire, { HOME: dir, TMPDIR: join(dir, 'tmp'), REGISTRY_AUTH_FILE: join(dir, 'auth.json'), CONTAINERS_REGISTRIES_CONF: registriesConf });
  }

  /** `registriesConf`: the registries.conf text (default: none but an empty search list). */
  static create(dir: string, tripwire: Tripwire, options: { registriesConf?: string } = {}): Podman {
    return new Podman(dir, tripwire, options.registriesConf);
  }

  async run(args: string[]): Promise<string> {
    try {
      const { stdout } = await run('podman', [...this.#globalArgs, ...args], { env: this.#env, timeout: PODMAN_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const failure = error as { stderr?: string; message: string };
      throw new Error(`podman ${args.join(' ')} failed: ${failure.stderr?.trim() || failure.message}`);
    }
  }

  /** Removes every image. */
  async reset(): Promise<void> {
    await this.run(['rmi', '--all', '--force']);
  }

  /** Removes the run directory (the rest is under `dir`, the caller's). */
  remove(): void {
    rmSync(this.#runroot, { recursive: true, force: true });
  }
}
