/**
 * SIGTERM on the real process (`node dist/main.js serve`): new connections are refused, a blob
 * download in flight completes with the right bytes, the process exits 0, and the cache holds
 * the blob complete or not at all, with no temp files left behind.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { sha256, waitFor } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { tempDir, type TempDir } from '../security/security-fixture.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = path.join(REPO_ROOT, 'dist', 'main.js');
const DEADLINE_MS = 20_000;

interface Served {
  child: ChildProcess;
  url: string;
  exit: Promise<number | null>;
  cacheDir: string;
}

describe('graceful shutdown of `serve`', () => {
  let dir: TempDir;
  let upstream: FakeRegistry;
  let served: Served | undefined;
  const image = makeImage({ layers: [256 * 1024], seed: 'shutdown' });
  const layer = image.layers[0]!;

  beforeAll(async () => {
    await build();
    dir = await tempDir('mirror-shutdown-');
    upstream = await startFakeRegistry();
    pushImage(upstream, 'library/alpine', 'latest', image);
  }, 240_000);
  afterEach(() => {
    if (served && served.child.exitCode === null) served.child.kill('SIGKILL');
    served = undefined;
  });
  afterAll(async () => {
    await upstream?.close();
    await dir?.remove();
  });

  it('lets a slow blob download finish, refuses new connections, exits 0, leaves the blob published', async () => {
    served = await startServe(dir, upstream, 'finish');
    upstream.setFault('blob', { mode: 'slow', bytesPerSecond: 128 * 1024, times: 1 });
    const response = await request(`${served.url}/v2/library/alpine/blobs/${layer.digest}`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
    expect(response.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    const body = (async () => {
      for await (const chunk of response.body) chunks.push(Buffer.from(chunk as Uint8Array));
    })();
    await waitFor(() => chunks.length > 0, DEADLINE_MS, 'first bytes of the blob');

    served.child.kill('SIGTERM');
    await waitFor(async () => !(await answers(`${served!.url}/healthz`)), DEADLINE_MS, 'new connections refused');
    await body;
    expect(sha256(Buffer.concat(chunks))).toBe(layer.digest);
    expect(await withDeadline(served.exit, 'process exit')).toBe(0);

    expect(await tempFiles(served.cacheDir)).toEqual([]);
    const stored = await readFile(blobPath(served.cacheDir, layer.digest));
    expect(sha256(stored)).toBe(layer.digest);
  });

  it('abandons a fill nobody waits for within the bound: no temp file, no partial blob, exit 0', async () => {
    served = await startServe(dir, upstream, 'abandon');
    // 256 KiB at 8 KiB/s would take 32 s: longer than the drain bound.
    upstream.setFault('blob', { mode: 'slow', bytesPerSecond: 8 * 1024, times: 1 });
    const controller = new AbortController();
    const response = await request(`${served.url}/v2/library/alpine/blobs/${layer.digest}`, { signal: controller.signal, headersTimeout: 10_000 });
    expect(response.statusCode).toBe(200);
    controller.abort();
    await response.body.dump().catch(() => {});
    await waitFor(async () => (await tempFiles(served!.cacheDir)).length === 1, DEADLINE_MS, 'fill under way');

    served.child.kill('SIGTERM');
    expect(await withDeadline(served.exit, 'process exit')).toBe(0);
    expect(await tempFiles(served.cacheDir)).toEqual([]);
    expect(existsSync(blobPath(served.cacheDir, layer.digest))).toBe(false);
  });
});

async function build(): Promise<void> {
  // Type errors elsewhere in the tree do not stop tsc from emitting; what matters is dist/main.js.
  await new Promise<void>((resolve) => execFile('npm', ['run', 'build'], { cwd: REPO_ROOT, timeout: 200_000 }, () => resolve()));
  if (!existsSync(MAIN)) throw new Error(`npm run build did not produce ${MAIN}`);
}

async function startServe(dir: TempDir, upstream: FakeRegistry, name: string): Promise<Served> {
  const cacheDir = dir.file(`cache-${name}`);
  await mkdir(cacheDir, { recursive: true });
  const configFile = dir.file(`${name}.json`);
  await writeFile(configFile, JSON.stringify({
    listen: { host: '127.0.0.1', port: 0 },
    cache: { dir: cacheDir },
    metadata: { store: 'memory' },
    log: { level: 'warn' },
    upstreams: { 'docker.io': { url: upstream.url } },
  }));
  const child = spawn(process.execPath, [MAIN, 'serve', '--config', configFile], { cwd: dir.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
  const url = await withDeadline(new Promise<string>((resolve, reject) => {
    void exit.then((code) => reject(new Error(`mirror exited with ${code} before listening: ${stderr}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'listening' && entry.url) resolve(entry.url);
      } catch {
        // not a log line
      }
    });
  }), 'listening line');
  return { child, url, exit, cacheDir };
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await request(url, { headersTimeout: 2_000, bodyTimeout: 2_000, reset: true });
    await response.body.dump();
    return true;
  } catch {
    return false;
  }
}

/** Files of writers under way, whichever process's temp directory they are in. */
async function tempFiles(cacheDir: string): Promise<string[]> {
  const entries = await readdir(path.join(cacheDir, 'tmp'), { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
}

function blobPath(cacheDir: string, digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return path.join(cacheDir, 'blobs', 'sha256', hex.slice(0, 2), hex);
}

function withDeadline<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const deadline = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} did not happen within ${DEADLINE_MS} ms`)), DEADLINE_MS); });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
