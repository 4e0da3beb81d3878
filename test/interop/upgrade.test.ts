/**
 * Issue 13, done-when: "a cache filled by today's release serves the same images after the
 * upgrade with zero upstream requests". The cache is the one release 7997902 (the last before the
 * metadata store moved to SQLite) left after pulling the images of support/upgrade-images.ts
 * through itself: made by that build (scripts/make-upgrade-fixture.ts) and kept here packed,
 * because building that release needs packages this one no longer installs (proper-lockfile)
 * and a whole TypeScript build, neither of which the check is about. The current build starts on
 * it (`node dist/main.js serve`), migrates it, and serves every image whole, each body hashing to
 * its digest, while its upstreams (fresh fakes holding the same images) count zero requests.
 *
 * The tags were checked when the fixture was made, so the mirror is given a TTL longer than the
 * fixture's age: what is checked is that the migrated tags and content are served, not that an
 * expired tag is revalidated (test/e2e covers that).
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { ensureMirrorBuilt, NODE_FLAGS, REPO_ROOT } from './support/mirror.js';
import { publishUpgradeImages, pullWhole, upgradeImages } from './support/upgrade-images.js';

const RELEASE = '7997902';
const FIXTURE = path.join(REPO_ROOT, 'test', 'interop', 'fixtures', `cache-${RELEASE}.tar.gz`);
const TEN_YEARS_S = 10 * 365 * 24 * 3600;

let work: string;
let hub: FakeRegistry;
let gcr: FakeRegistry;
let server: { url: string; stop(): Promise<void>; log(): string } | undefined;

beforeAll(async () => {
  ensureMirrorBuilt();
  work = await mkdtemp(path.join(tmpdir(), 'mirror-upgrade-interop-'));
  hub = await startFakeRegistry({ auth: 'bearer' });
  gcr = await startFakeRegistry();
  publishUpgradeImages({ 'docker.io': hub, 'gcr.io': gcr });
});
afterAll(async () => {
  await server?.stop();
  await hub?.close();
  await gcr?.close();
  await rm(work, { recursive: true, force: true });
});

/** Unpacks the fixture as the release left it, file times included (the LRU reads them). */
async function unpack(file: string, dir: string): Promise<void> {
  const extract = tar.extract();
  const reading = pipeline(createReadStream(file), createGunzip(), extract);
  for await (const entry of extract) {
    const target = path.join(dir, entry.header.name);
    if (!target.startsWith(`${dir}${path.sep}`)) throw new Error(`fixture entry ${entry.header.name} leaves the cache`);
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    if (entry.header.type === 'directory') await mkdir(target, { recursive: true });
    else {
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, Buffer.concat(chunks));
      if (entry.header.mtime) await utimes(target, entry.header.mtime, entry.header.mtime);
    }
  }
  await reading;
}

async function serveCurrentBuild(cacheDir: string): Promise<NonNullable<typeof server>> {
  const config = path.join(work, 'mirror.config.json');
  await writeFile(config, JSON.stringify({
    listen: { host: '127.0.0.1', port: 0 },
    cache: { dir: cacheDir, maxBytes: 2 ** 30 },
    tags: { ttlSeconds: TEN_YEARS_S },
    log: { level: 'info' },
    defaultUpstream: 'docker.io',
    upstreams: { 'docker.io': { url: hub.url, tokenRealms: [new URL(hub.tokenUrl).host] }, 'gcr.io': { url: gcr.url } },
  }));
  const child = spawn(process.execPath, [...NODE_FLAGS, path.join(REPO_ROOT, 'dist', 'main.js'), 'serve', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => void (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    // A mirror that never listened is killed, not left running after the test gave up on it.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no "listening" line within 30 s:\n${output}`));
    }, 30_000);
    void exited.then((code) => reject(new Error(`the mirror exited with ${code}:\n${output}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += `${line}\n`;
      const entry = (() => { try { return JSON.parse(line) as { msg?: string; url?: string }; } catch { return {}; } })();
      if (entry.msg === 'listening' && entry.url) {
        clearTimeout(timer);
        resolve(entry.url);
      }
    });
  });
  return {
    url,
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

describe(`a cache filled by release ${RELEASE}`, () => {
  it('serves the same images after the upgrade with zero upstream requests', async () => {
    const made = JSON.parse(readFileSync(FIXTURE.replace(/\.tar\.gz$/, '.json'), 'utf8')) as { images: Array<{ repository: string; tag: string; digest: string }> };
    // The fixture holds exactly the images this test knows (same seeds, same digests).
    expect(made.images.map((image) => `${image.repository}:${image.tag}@${image.digest}`))
      .toEqual(upgradeImages().map((entry) => `${entry.repository}:${entry.tag}@${entry.image.manifest.digest}`));
    const cacheDir = path.join(work, 'cache');
    await unpack(FIXTURE, cacheDir);
    expect(existsSync(path.join(cacheDir, 'metadata', 'tags.json'))).toBe(true);

    server = await serveCurrentBuild(cacheDir);
    hub.resetCounts();
    gcr.resetCounts();
    for (const entry of upgradeImages()) {
      // A failure says what the mirror logged: a cut connection alone tells nothing.
      const read = await pullWhole(server.url, entry).catch((error: Error) => {
        throw new Error(`${error.message}\n--- the mirror's log ---\n${server!.log()}`, { cause: error });
      });
      expect(read.length, `${entry.repository}:${entry.tag}`).toBeGreaterThan(2);
    }
    // A serving process asks each upstream GET /v2/ once at start (how it authenticates); nothing else may reach them.
    const contentRequests = (requests: Array<{ method: string; path: string }>) => requests.map((request) => `${request.method} ${request.path}`).filter((line) => line !== 'GET /v2/');
    expect(contentRequests(hub.requests)).toEqual([]);
    expect(contentRequests(gcr.requests)).toEqual([]);

    // The earlier layout was migrated, and its metadata files left renamed, not deleted.
    expect(existsSync(path.join(cacheDir, 'metadata.db'))).toBe(true);
    expect(existsSync(path.join(cacheDir, 'manifests'))).toBe(false);
    expect((await readdir(path.join(cacheDir, 'metadata'))).filter((name) => name.startsWith('tags.json.migrated-'))).toHaveLength(1);
  }, 120_000);
});
