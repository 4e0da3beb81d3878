/**
 * kill -9 in the middle of a slow fill, then a restart: the partial download's space is
 * reclaimed, the blob is fetched again and served right, and tags written before the crash
 * are still known. The mirror runs as a real child process (`registry-mirror serve`, from the
 * sources through tsx so no build is needed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeRegistry, startFakeRegistry } from '../helpers/fake-registry.js';
import { get, sha256, waitFor } from '../helpers/http.js';
import { type MirrorUnderTest, startMirror } from '../helpers/mirror-under-test.js';
import { MiB, pushTestImage, tempFiles } from './cache-fixture.js';

const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Starts `registry-mirror serve` and resolves with its URL once it logs "listening". It leads a
 * process group of its own: with `--workers` (by default one per core) the server is several
 * processes, and a crash of the server is all of them dying (`killServer`).
 */
async function spawnMirror(configFile: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve', '--config', configFile], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('mirror did not start within 20 s')), 20_000);
    child.once('exit', (code) => reject(new Error(`mirror exited with ${code} before listening`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'listening' && entry.url) {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
  });
  return { child, url };
}

/** SIGKILL to every process of the server (its process group), as a crash or the OOM killer of its cgroup. */
function killServer(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

describe('crash in the middle of a fill', () => {
  let fake: FakeRegistry | undefined;
  let child: ChildProcess | undefined;
  let mirror: MirrorUnderTest | undefined;
  let workDir: string | undefined;
  afterEach(async () => {
    if (child) killServer(child);
    await mirror?.close();
    await fake?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('reclaims the partial download after kill -9 and fetches the blob again', async () => {
    fake = await startFakeRegistry();
    const image = pushTestImage(fake, 'library/slow', 'v1', [2 * MiB], 'crash');
    const layer = image.layers[0]!;
    workDir = await mkdtemp(path.join(tmpdir(), 'mirror-crash-'));
    const cacheDir = path.join(workDir, 'cache');
    const configFile = path.join(workDir, 'mirror.config.json');
    // No manifest prefetch: the crash must hit the client's own fill, one download in one worker.
    const raw = {
      listen: { host: '127.0.0.1', port: 0 }, log: { level: 'warn' }, cache: { dir: cacheDir, maxBytes: '64MiB' }, fetch: { prefetch: false }, upstreams: { 'docker.io': { url: fake.url } },
    };
    await writeFile(configFile, JSON.stringify(raw));

    const spawned = await spawnMirror(configFile);
    child = spawned.child;
    expect((await get(`${spawned.url}/v2/library/slow/manifests/v1`, { accept: image.manifest.mediaType })).status).toBe(200);
    fake.setFault('blob', { mode: 'slow', bytesPerSecond: 256 * 1024, times: 1 });
    const pending = request(`${spawned.url}/v2/library/slow/blobs/${layer.digest}`).then((response) => response.body.arrayBuffer()).catch(() => undefined);
    await waitFor(async () => {
      const [file] = await tempFiles(cacheDir);
      return file !== undefined && (await stat(file)).size > 0;
    }, 10_000, 'the fill to have written part of the blob');
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    killServer(child);
    await exited;
    child = undefined;
    await pending;
    expect(await tempFiles(cacheDir)).toHaveLength(1);

    fake.resetCounts();
    mirror = await startMirror({ upstreams: { 'docker.io': { url: fake.url } } }, { cacheDir });
    expect(await tempFiles(cacheDir)).toEqual([]);
    const tag = await get(`${mirror.url}/v2/library/slow/manifests/v1`, { accept: image.manifest.mediaType });
    expect(tag.status).toBe(200);
    expect(fake.count({ pathIncludes: '/manifests/' })).toBe(0);
    const blob = await get(`${mirror.url}/v2/library/slow/blobs/${layer.digest}`);
    expect(blob.status).toBe(200);
    expect(sha256(blob.body)).toBe(layer.digest);
    expect(fake.count({ method: 'GET', pathIncludes: '/blobs/' })).toBe(1);
  });
});
