/** `node dist/main.js serve --workers N` as a child process, its JSON log lines collected (the workers tests). */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach } from 'vitest';
import { startFakeRegistry, type FakeRegistry, type FakeRegistryOptions } from '../helpers/fake-registry.js';
import { ensureMirrorBuilt, NODE_FLAGS, REPO_ROOT } from '../interop/support/mirror.js';

export interface Served {
  child: ChildProcess;
  url: string;
  lines: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

export async function serveWorkers(configFile: string, workers: number): Promise<Served> {
  ensureMirrorBuilt();
  const child = spawn(process.execPath, [...NODE_FLAGS, path.join(REPO_ROOT, 'dist', 'main.js'), 'serve', '--config', configFile, '--workers', String(workers)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines: Array<Record<string, unknown>> = [];
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no listening line within 30 s')), 30_000);
    void exited.then((code) => reject(new Error(`serve exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      lines.push(entry);
      if (entry.msg === 'listening') {
        clearTimeout(timer);
        resolve(String(entry.url));
      }
    });
  });
  return { child, url, lines, exited };
}

export interface WorkersSetup {
  /** Options of the fake upstream. */
  fake?: FakeRegistryOptions;
  /** Its entry in `upstreams` (default: just its URL) and the `cache` section beside the directory. */
  upstream?: (fake: FakeRegistry) => Record<string, unknown>;
  cache?: Record<string, unknown>;
  /** Top-level config keys beside those (`offline`, ...). */
  config?: Record<string, unknown>;
}

/**
 * Per test: a fake upstream, a temp directory and `serve --workers 2` on them, all stopped and
 * removed after each test (the process with SIGKILL if it still runs).
 */
export function useServedWorkers(): (setup?: WorkersSetup) => Promise<{ fake: FakeRegistry; served: Served; cacheDir: string }> {
  let fake: FakeRegistry | undefined;
  let served: Served | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    if (served && served.child.exitCode === null) served.child.kill('SIGKILL');
    await served?.exited;
    await fake?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
    fake = served = dir = undefined;
  });
  return async (setup = {}) => {
    fake = await startFakeRegistry(setup.fake);
    dir = await mkdtemp(path.join(tmpdir(), 'mirror-workers-'));
    const configFile = path.join(dir, 'mirror.config.json');
    const upstream = setup.upstream?.(fake) ?? { url: fake.url };
    const cacheDir = path.join(dir, 'cache');
    const config = { listen: { host: '127.0.0.1', port: 0 }, cache: { dir: cacheDir, ...setup.cache }, log: { level: 'info' }, upstreams: { 'docker.io': upstream }, ...setup.config };
    await writeFile(configFile, JSON.stringify(config));
    served = await serveWorkers(configFile, 2);
    return { fake, served, cacheDir };
  };
}
