/**
 * Registries the push scenario measures, each started (and stopped) by the scenario itself,
 * on 127.0.0.1 with an OS-assigned port and its storage under the scenario's directory:
 *   registry:2   Docker's registry (distribution 2.8, Debian's docker-registry) in registry mode,
 *                filesystem storage, no auth: the reference for issue 14's "push throughput >= 1.0x"
 *   mirror       this project, `node dist/main.js serve` with the registry-only example's routing
 *                ("defaultUpstream": null: every name hosted), anonymous pushes, sqlite metadata
 * Every ratio is computed against registry:2.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProcessGroup, freeLoopbackPort, waitForHttp } from '../interop/support/processes.js';
import { NODE_FLAGS, REPO_ROOT, ensureMirrorBuilt } from '../interop/support/mirror.js';
import { versionOf } from './machine.js';

export interface PushTarget {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface PushTargetKind {
  readonly name: string;
  /** False when the program is not installed here (the scenario notes it and goes on). */
  available(): boolean;
  start(dir: string): Promise<PushTarget>;
}

export const REGISTRY2 = 'registry:2';
export const MIRROR = 'mirror';

export const PUSH_TARGETS: PushTargetKind[] = [
  { name: REGISTRY2, available: () => versionOf('docker-registry', ['--version']) !== null, start: startRegistry2 },
  { name: MIRROR, available: () => true, start: startMirrorRegistry },
];

async function startMirrorRegistry(dir: string): Promise<PushTarget> {
  ensureMirrorBuilt();
  const processes = new ProcessGroup();
  mkdirSync(dir, { recursive: true });
  const port = await freeLoopbackPort();
  const configFile = join(dir, 'mirror.config.json');
  writeFileSync(configFile, JSON.stringify({
    listen: { host: '127.0.0.1', port },
    cache: { dir: join(dir, 'cache'), maxBytes: '64GiB' },
    log: { level: 'warn' },
    defaultUpstream: null,
    upstreams: {},
    hosted: { allowAnonymousPush: true },
  }, null, 2));
  const started = processes.start(MIRROR, process.execPath, [...NODE_FLAGS, join(REPO_ROOT, 'dist', 'main.js'), 'serve', '--config', configFile], join(dir, 'mirror.log'));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/v2/`, started);
  } catch (error) {
    await processes.stopAll();
    throw error;
  }
  return { name: MIRROR, url, pid: started.pid, stop: () => processes.stopAll() };
}

export async function startRegistry2(dir: string): Promise<PushTarget> {
  const processes = new ProcessGroup();
  mkdirSync(join(dir, 'data'), { recursive: true });
  const port = await freeLoopbackPort();
  const configFile = join(dir, 'config.yml');
  // distribution's YAML config; JSON is valid YAML.
  writeFileSync(configFile, JSON.stringify({
    version: '0.1',
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: join(dir, 'data') }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } }, redirect: { disable: true } },
    http: { addr: `127.0.0.1:${port}` },
  }, null, 2));
  const started = processes.start(REGISTRY2, 'docker-registry', ['serve', configFile], join(dir, 'registry.log'));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/v2/`, started);
  } catch (error) {
    await processes.stopAll();
    throw error;
  }
  return { name: REGISTRY2, url, pid: started.pid, stop: () => processes.stopAll() };
}
