/**
 * The upgrade of a cache written by an earlier release (src/upgrade-cache.ts) runs in one process
 * at a time: `serve --workers N` starts N processes on one cache, and `warm`, `import` or a second
 * `serve` may start beside them. A process that opened its stores while another was half-way
 * through the upgrade used to serve at once, without the tags the other had not imported yet
 * (they went upstream), and its start-up reconcile indexed the manifests being moved as blobs.
 *
 * Another process holding the lock is a real child process: the lock is the OS's, and ends with
 * the process however it ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { openStores, type Stores } from '../../src/compose.js';
import { parseMirrorConfig } from '../../src/config/mirror-config.js';
import { createLogger } from '../../src/log.js';
import { UPGRADE_LOCK_FILE } from '../../src/upgrade-cache.js';
import { writeNamespaceFile } from '../metadata/legacy-cache-fixture.js';

const TAG = { digest: `sha256:${'a'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 10, checkedAt: 1_700_000_000_000 };
const betterSqlite3 = createRequire(import.meta.url).resolve('better-sqlite3');

let dir: string;
let holder: ChildProcess | undefined;
let stores: Stores | undefined;
afterEach(async () => {
  holder?.kill('SIGKILL');
  await stores?.close();
  stores = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** Another process in the middle of an upgrade: it holds the lock until it is killed. */
async function holdLock(cacheDir: string): Promise<ChildProcess> {
  const script = `const D = require(${JSON.stringify(betterSqlite3)}); const db = new D(${JSON.stringify(path.join(cacheDir, UPGRADE_LOCK_FILE))}); db.exec('BEGIN EXCLUSIVE'); console.log('held'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  expect(line.toString().trim()).toBe('held');
  return child;
}

async function legacyCache(): Promise<string> {
  dir = await mkdtemp(path.join(tmpdir(), 'mirror-upgrade-lock-'));
  const cacheDir = path.join(dir, 'cache');
  await writeNamespaceFile(cacheDir, 'tags', [{ key: 'docker.io/library/alpine:3.20', value: TAG }]);
  return cacheDir;
}

describe('upgrading a cache of an earlier release', () => {
  it('waits while another process upgrades the cache, and goes on once that process is gone', async () => {
    const cacheDir = await legacyCache();
    holder = await holdLock(cacheDir);
    const config = parseMirrorConfig({ cache: { dir: cacheDir }, upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } } });
    let opened = false;
    const opening = openStores(config, createLogger('silent')).then((result) => {
      opened = true;
      return result;
    });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(opened).toBe(false);
    expect(existsSync(path.join(cacheDir, 'metadata', 'tags.json'))).toBe(true);

    holder.kill('SIGKILL');
    stores = await opening;
    expect(await stores.metadata.tags.get('docker.io/library/alpine', '3.20')).toEqual(TAG);
    expect(existsSync(path.join(cacheDir, 'metadata', 'tags.json'))).toBe(false);
  });

  it('does not wait for the lock of a process that upgraded and went on serving', async () => {
    const cacheDir = await legacyCache();
    const config = parseMirrorConfig({ cache: { dir: cacheDir }, upstreams: { 'docker.io': { url: 'http://127.0.0.1:9' } } });
    const first = await openStores(config, createLogger('silent'));
    try {
      stores = await openStores(config, createLogger('silent'));
      expect(await stores.metadata.tags.get('docker.io/library/alpine', '3.20')).toEqual(TAG);
    } finally {
      await first.close();
    }
  });
});
