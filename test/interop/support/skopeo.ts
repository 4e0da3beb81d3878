/**
 * skopeo, boxed in: its registries.conf, policy, auth file and temp dir live in our temp
 * directory, and its HTTP(S) proxy is a closed loopback port with only 127.0.0.1 exempt, so a
 * misbehaving mirror can never send it to the internet. (skopeo 1.9 ignores
 * CONTAINERS_REGISTRIES_CONF; the global --registries-conf option is what it honours.)
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { freeLoopbackPort } from './processes.js';
import { sha256Digest } from './layers.js';

const run = promisify(execFile);
const SKOPEO_TIMEOUT_MS = 120_000;

export interface OciLayoutEntry {
  mediaType: string;
  digest: string;
  annotations?: Record<string, string>;
}

export class Skopeo {
  readonly #globalArgs: string[];
  readonly #env: NodeJS.ProcessEnv;

  private constructor(
    readonly dir: string,
    deadProxyPort: number,
    registriesConfText: string,
  ) {
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp, { recursive: true });
    const registriesConf = join(dir, 'registries.conf');
    writeFileSync(registriesConf, registriesConfText);
    const policy = join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    this.#globalArgs = ['--registries-conf', registriesConf, '--policy', policy, '--tmpdir', tmp];
    const deadProxy = `http://127.0.0.1:${deadProxyPort}`;
    this.#env = {
      PATH: process.env.PATH,
      HOME: dir,
      XDG_RUNTIME_DIR: dir,
      REGISTRY_AUTH_FILE: join(dir, 'auth.json'),
      TMPDIR: tmp,
      HTTP_PROXY: deadProxy,
      HTTPS_PROXY: deadProxy,
      http_proxy: deadProxy,
      https_proxy: deadProxy,
      NO_PROXY: '127.0.0.1',
      no_proxy: '127.0.0.1',
    };
  }

  /**
   * `deadProxyPort` is a port nothing listens on (taken from the OS, then released) unless given
   * (e.g. a tripwire's). `registriesConf` is the text of skopeo's registries.conf (empty: none).
   */
  static async create(dir: string, options: { registriesConf?: string; deadProxyPort?: number } = {}): Promise<Skopeo> {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'auth.json'), '{"auths":{}}');
    return new Skopeo(dir, options.deadProxyPort ?? (await freeLoopbackPort()), options.registriesConf ?? '');
  }

  async run(args: string[]): Promise<string> {
    try {
      const { stdout } = await run('skopeo', [...this.#globalArgs, ...args], { env: this.#env, timeout: SKOPEO_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const failure = error as { stderr?: string; message: string };
      throw new Error(`skopeo ${args.join(' ')} failed: ${failure.stderr?.trim() || failure.message}`);
    }
  }

  /** `skopeo copy --all` of host/repo:tag into a fresh OCI layout directory. */
  async copyToOci(host: string, repo: string, tag: string, layoutDir: string, extraArgs: string[] = []): Promise<void> {
    mkdirSync(dirname(layoutDir), { recursive: true });
    await this.run(['copy', '--all', '--src-tls-verify=false', ...extraArgs, `docker://${host}/${repo}:${tag}`, `oci:${layoutDir}:${tag}`]);
  }

  /** sha256 of the exact manifest bytes the registry serves for a reference. */
  async rawManifestDigest(imageRef: string, extraArgs: string[] = []): Promise<string> {
    const { stdout } = await run('skopeo', [...this.#globalArgs, 'inspect', '--raw', '--tls-verify=false', ...extraArgs, `docker://${imageRef}`], {
      env: this.#env,
      timeout: SKOPEO_TIMEOUT_MS,
      encoding: 'buffer',
    }).catch((error: { stderr?: Buffer; message: string }) => {
      throw new Error(`skopeo inspect --raw ${imageRef} failed: ${error.stderr?.toString().trim() || error.message}`);
    });
    return sha256Digest(stdout);
  }
}

export function readOciIndex(layoutDir: string): OciLayoutEntry[] {
  return (JSON.parse(readFileSync(join(layoutDir, 'index.json'), 'utf8')) as { manifests: OciLayoutEntry[] }).manifests;
}

/** Digests of the blobs in an OCI layout, each checked against its file's content. */
export function verifiedLayoutBlobs(layoutDir: string): Set<string> {
  const blobDir = join(layoutDir, 'blobs', 'sha256');
  const digests = new Set<string>();
  for (const hex of readdirSync(blobDir)) {
    const actual = sha256Digest(readFileSync(join(blobDir, hex)));
    if (actual !== `sha256:${hex}`) throw new Error(`${layoutDir}: blob ${hex} holds content ${actual}`);
    digests.add(actual);
  }
  return digests;
}
