/**
 * Issue 12 item 5: temp files belong to their process. A second `serve` on the same cache, one
 * that fails because the port is taken and one that runs beside the first (replicas sharing a
 * cache), must not touch the first one's downloads in progress: the first one's slow fill still
 * completes with the right bytes and is published. Real processes (`src/main.ts` through tsx).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeRegistry, startFakeRegistry } from '../helpers/fake-registry.js';
import { get, sha256, waitFor } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';

const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEADLINE_MS = 20_000;

interface Served {
  child: ChildProcess;
  exit: Promise<number | null>;
  url: Promise<string>;
}

function serve(configFile: string): Served {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve', '--config', configFile], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr!.resume();
  const url = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mirror did not listen within ${DEADLINE_MS} ms`)), DEADLINE_MS);
    void exit.then((code) => reject(new Error(`mirror exited with ${code} before listening`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      if (entry.msg === 'listening' && entry.url) {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
  });
  url.catch(() => {});
  return { child, exit, url };
}

/** Every file under `dir`, recursively. */
async function filesBelow(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

describe('two servers on one cache', () => {
  let fake: FakeRegistry | undefined;
  let workDir: string | undefined;
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const child of children.splice(0)) child.kill('SIGKILL');
    await fake?.close();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('a second serve, on the same port or beside, leaves the first one\'s download alone', { timeout: 120_000 }, async () => {
    fake = await startFakeRegistry();
    const image = makeImage({ layers: [1024 * 1024], seed: 'shared-cache' });
    pushImage(fake, 'library/shared', 'v1', image);
    const layer = image.layers[0]!;
    workDir = await mkdtemp(path.join(tmpdir(), 'mirror-shared-'));
    const cacheDir = path.join(workDir, 'cache');
    const config = async (name: string, port: number) => {
      const file = path.join(workDir!, `${name}.json`);
      await writeFile(file, JSON.stringify({ listen: { host: '127.0.0.1', port }, log: { level: 'info' }, cache: { dir: cacheDir, maxBytes: '64MiB' }, upstreams: { 'docker.io': { url: fake!.url } } }));
      return file;
    };

    const first = serve(await config('first', 0));
    children.push(first.child);
    const firstUrl = await first.url;
    fake.setFault('blob', { mode: 'slow', bytesPerSecond: 128 * 1024, times: 1 });
    const body = request(`${firstUrl}/v2/library/shared/blobs/${layer.digest}`, { headersTimeout: DEADLINE_MS, bodyTimeout: DEADLINE_MS })
      .then(async (response) => ({ status: response.statusCode, bytes: Buffer.from(await response.body.arrayBuffer()) }));
    await waitFor(async () => (await filesBelow(path.join(cacheDir, 'tmp'))).length > 0, DEADLINE_MS, 'the first server\'s fill to write');

    const samePort = serve(await config('same-port', Number(new URL(firstUrl).port)));
    children.push(samePort.child);
    expect(await samePort.exit).not.toBe(0);
    const beside = serve(await config('beside', 0));
    children.push(beside.child);
    await beside.url;

    const { status, bytes } = await body;
    expect(status).toBe(200);
    expect(sha256(bytes)).toBe(layer.digest);
    fake.resetCounts();
    const again = await get(`${firstUrl}/v2/library/shared/blobs/${layer.digest}`);
    expect(sha256(again.body)).toBe(layer.digest);
    expect(fake.count({ pathIncludes: '/blobs/' })).toBe(0);
  });
});
