/** BlobLru against a real BlobStore in a temp directory: sizes, recency, pins, reservations. */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseByteSize } from '../../src/config/mirror-config.js';
import { digestOf } from '../../src/domain/digest.js';
import { BlobLru } from '../../src/eviction/blob-lru.js';
import { BlobStore } from '../../src/store/blob-store.js';
import { StorePaths } from '../../src/store/store-paths.js';
import { filesUnder } from './cache-fixture.js';

let root: string;
let store: BlobStore;

beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'blob-lru-'));
  store = new BlobStore(new StorePaths(root));
  await store.init();
});
afterEach(async () => rm(root, { recursive: true, force: true }));

/** Writes a blob of `size` bytes and returns its digest; `usedAtMs` becomes its mtime. */
async function putBlob(seed: string, size: number, usedAtMs?: number): Promise<string> {
  const bytes = Buffer.alloc(size, seed);
  const digest = digestOf(bytes);
  const file = store.paths.blob(digest);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, bytes);
  if (usedAtMs !== undefined) await utimes(file, new Date(usedAtMs), new Date(usedAtMs));
  return digest.value;
}

const onDisk = (digest: string) => existsSync(path.join(root, 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7)));

describe('cache.maxBytes', () => {
  it('accepts byte counts and binary or decimal size strings', () => {
    expect(parseByteSize('cache.maxBytes', '50GiB')).toBe(50 * 2 ** 30);
    expect(parseByteSize('cache.maxBytes', '180MB')).toBe(180_000_000);
    expect(parseByteSize('cache.maxBytes', '1.5 KiB')).toBe(1536);
    expect(parseByteSize('cache.maxBytes', 4096)).toBe(4096);
    expect(() => parseByteSize('cache.maxBytes', '-1')).toThrow(/cache\.maxBytes/);
    expect(() => parseByteSize('cache.maxBytes', '10 parsecs')).toThrow(/"10 parsecs"/);
  });
});

describe('BlobLru', () => {
  it('evicts the least recently used blob and deletes its file; a hit bumps recency', async () => {
    const lru = new BlobLru(store, 300);
    const [a, b, c] = [await putBlob('a', 100), await putBlob('b', 100), await putBlob('c', 100)];
    for (const digest of [a, b, c]) lru.add(digest, 100);
    lru.use(a, 100)();
    lru.add(await putBlob('d', 100), 100);
    await lru.idle();
    expect([a, b, c].map(onDisk)).toEqual([true, false, true]);
    expect(lru.totalBytes).toBe(300);
  });

  it('keeps a pinned blob on disk until its last reader releases it', async () => {
    const lru = new BlobLru(store, 200);
    const a = await putBlob('a', 100);
    lru.add(a, 100);
    const releaseFirst = lru.use(a, 100);
    const releaseSecond = lru.use(a, 100);
    lru.add(await putBlob('b', 100), 100);
    lru.add(await putBlob('c', 100), 100);
    await lru.idle();
    expect(lru.has(a)).toBe(false);
    expect(onDisk(a)).toBe(true);
    releaseFirst();
    releaseFirst();
    await lru.idle();
    expect(onDisk(a)).toBe(true);
    releaseSecond();
    await lru.idle();
    expect(onDisk(a)).toBe(false);
  });

  it('a reservation evicts older blobs before the download writes, and is given back', async () => {
    const lru = new BlobLru(store, 300);
    const [a, b] = [await putBlob('a', 100), await putBlob('b', 100)];
    lru.add(a, 100);
    lru.add(b, 100);
    const release = lru.reserve(150);
    await lru.idle();
    expect(onDisk(a)).toBe(false);
    expect(onDisk(b)).toBe(true);
    expect(lru.totalBytes).toBe(250);
    expect(lru.count).toBe(1);
    release();
    release();
    expect(lru.totalBytes).toBe(100);
    expect(lru.count).toBe(1);
    expect(onDisk(b)).toBe(true);
  });

  it('evictBytes frees at least the bytes asked, oldest first (disk full)', async () => {
    const lru = new BlobLru(store, 1000);
    const digests = [await putBlob('a', 100), await putBlob('b', 100), await putBlob('c', 100)];
    for (const digest of digests) lru.add(digest, 100);
    expect(lru.evictBytes(150)).toBe(200);
    await lru.idle();
    expect(digests.map(onDisk)).toEqual([false, false, true]);
  });

  it('rebuilds sizes and recency from disk (mtime), evicting the oldest past the budget', async () => {
    const now = Date.now();
    const old = await putBlob('old', 100, now - 3_000_000);
    const middle = await putBlob('middle', 100, now - 2_000_000);
    const recent = await putBlob('recent', 100, now - 1_000_000);
    const lru = new BlobLru(store, 200);
    await lru.rebuild();
    await lru.idle();
    expect([old, middle, recent].map(onDisk)).toEqual([false, true, true]);
    expect(lru.totalBytes).toBe(200);
  });

  it('a blob larger than the whole budget is not kept', async () => {
    const lru = new BlobLru(store, 100);
    const huge = await putBlob('huge', 150);
    lru.add(huge, 150);
    await lru.idle();
    expect(onDisk(huge)).toBe(false);
    expect(() => new BlobLru(store, 0)).toThrow(/cache\.maxBytes/);
  });
});

describe('BlobStore.init', () => {
  it('removes temp files a crash left behind and keeps published blobs', async () => {
    const blob = await putBlob('kept', 10);
    await writeFile(store.paths.temp('crashed-download'), Buffer.alloc(1000));
    expect(await filesUnder(store.paths.tmpDir)).toHaveLength(1);
    await new BlobStore(new StorePaths(root)).init();
    expect(await filesUnder(store.paths.tmpDir)).toEqual([]);
    expect(onDisk(blob)).toBe(true);
  });
});
