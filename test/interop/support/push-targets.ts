/**
 * Registries that accept pushes, each behind a RecordingProxy so a test can say exactly what a
 * client sent: Docker's `registry:2` (Debian's docker-registry, distribution 2.8 in registry
 * mode), with htpasswd Basic auth when credentials are given, as its docs set it up; and the
 * mirror's hosted repositories (`node dist/main.js serve`), in front of the interop upstreams:
 * registry-only ("defaultUpstream": null, anonymous pushes, mirror.registry.config.json) without
 * credentials, `team/**` and `my-image` hosted beside the docker.io cache with them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { startMirror } from './mirror.js';
import { ProcessGroup, freeLoopbackPort, waitForHttp } from './processes.js';
import { RecordingProxy } from './recording-proxy.js';
import type { Upstreams } from './upstreams.js';

export interface Credentials {
  username: string;
  password: string;
}

export interface PushTarget {
  /** What the registry is, for messages: "registry:2". */
  readonly name: string;
  /** host:port as image references name it (the recording proxy). */
  readonly host: string;
  readonly url: string;
  /** Set when the registry requires them (htpasswd). */
  readonly credentials?: Credentials;
  /** Implements GET /v2/<name>/referrers/<digest> (distribution-spec 1.1); distribution 2.8 does not. */
  readonly referrersApi: boolean;
  /** Everything clients sent to it. */
  readonly proxy: RecordingProxy;
  stop(): Promise<void>;
}

export interface PushTargetOptions {
  /** Require Basic authentication with these credentials. */
  credentials?: Credentials;
  /** The mirror: every unprefixed name hosted ("defaultUpstream": null); default: without credentials. */
  registryOnly?: boolean;
}

export type PushTargetStarter = (dir: string, options?: PushTargetOptions) => Promise<PushTarget>;

export const TEST_CREDENTIALS: Credentials = { username: 'pusher', password: 'push-secret-1' };

export const startRegistry2Target: PushTargetStarter = async (dir, options = {}) => {
  const processes = new ProcessGroup();
  mkdirSync(join(dir, 'data'), { recursive: true });
  const port = await freeLoopbackPort();
  const configFile = join(dir, 'config.yml');
  writeFileSync(configFile, registryConfig(dir, port, options.credentials));
  const started = processes.start('registry:2', 'docker-registry', ['serve', configFile], join(dir, 'registry.log'));
  const upstream = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${upstream}/v2/`, started);
    const proxy = await RecordingProxy.start(upstream);
    const host = `127.0.0.1:${proxy.port}`;
    const stop = async () => {
      await proxy.close();
      await processes.stopAll();
    };
    return { name: 'registry:2', host, url: `http://${host}`, ...(options.credentials ? { credentials: options.credentials } : {}), referrersApi: false, proxy, stop };
  } catch (error) {
    await processes.stopAll();
    throw error;
  }
};

/** distribution's YAML config; JSON is valid YAML. Deletes enabled, as a hosted registry needs. */
function registryConfig(dir: string, port: number, credentials?: Credentials): string {
  const config: Record<string, unknown> = {
    version: '0.1',
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(dir, 'data') },
      delete: { enabled: true },
      cache: { blobdescriptor: 'inmemory' },
      maintenance: { uploadpurging: { enabled: false } },
      redirect: { disable: true },
    },
    http: { addr: `127.0.0.1:${port}`, headers: { 'X-Content-Type-Options': ['nosniff'] } },
  };
  if (credentials) {
    const file = join(dir, 'htpasswd');
    writeFileSync(file, `${credentials.username}:${bcrypt.hashSync(credentials.password, 5)}\n`);
    config.auth = { htpasswd: { realm: 'registry-realm', path: file } };
  }
  return JSON.stringify(config, null, 2);
}

/** The mirror's hosted repositories over the interop upstreams (docker.io = the hub, gcr.io). */
export function mirrorPushTarget(upstreams: Upstreams): PushTargetStarter {
  return async (dir, options = {}) => {
    mkdirSync(dir, { recursive: true });
    const registryOnly = options.registryOnly ?? !options.credentials;
    const overrides: Record<string, unknown> = {
      ...(registryOnly ? { defaultUpstream: null } : {}),
      hosted: { repositories: registryOnly ? [] : ['team/**', 'my-image'], allowAnonymousPush: !options.credentials },
    };
    if (options.credentials) {
      const file = join(dir, 'htpasswd');
      writeFileSync(file, `${options.credentials.username}:${bcrypt.hashSync(options.credentials.password, 5)}\n`);
      overrides.auth = { htpasswd: file };
    }
    const mirror = await startMirror(dir, upstreams, overrides);
    try {
      const proxy = await RecordingProxy.start(mirror.url);
      const host = `127.0.0.1:${proxy.port}`;
      const stop = async () => {
        await proxy.close();
        await mirror.stop();
      };
      return { name: 'registry-mirror', host, url: `http://${host}`, ...(options.credentials ? { credentials: options.credentials } : {}), referrersApi: true, proxy, stop };
    } catch (error) {
      await mirror.stop();
      throw error;
    }
  };
}
