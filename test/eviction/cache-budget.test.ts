/**
 * The LRU policy over the metadata blob index (src/eviction/cache-budget.ts), asserted through
 * the content store and metadata interfaces: sizes, recency (written behind, read by eviction),
 * pins of blobs being read, claims that grow as a fill's bytes arrive, disk-full eviction, and
 * bringing the index in line with the store at start.
 */
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseByteSize } from '../../src/config/mirror-config.js';
import { digestOf, parseDigest } from '../../src/domain/digest.js';
import { CacheBudget } from '../../src/eviction/cache-budget.js';
import { MemoryMetadataStore } from '../../src/metadata/memory/memory-metadata-store.js';
import type { ContentStore } from '../../src/storage/content-store.js';
import { FsContentStore } from '../../src/storage/fs/fs-content-store.js';
import { MemoryContentStore } from '../../src/storage/memory/memory-content-store.js';

async function put(content: ContentStore, seed: string, size: number): Promise<string> {
  const bytes = Buffer.alloc(size, seed);
  const digest = digestOf(bytes);
  const writer = await content.writer();
  await writer.write(bytes);
  await writer.commit(digest);
  return digest.value;
}

function setup(maxBytes: number) {
  const content = new MemoryContentStore();
  const metadata = new MemoryMetadataStore();
  const evicted: string[] = [];
  const budget = new CacheBudget({ content, metadata, maxBytes, onEvict: (digest) => evicted.push(digest), onError: (error) => { throw error; } });
  const held = async (digest: string) => (await content.stat(parseDigest(digest))) !== undefined;
  /** Stores and indexes a blob, as a fill does. */
  const fill = async (seed: string, size: number) => {
    const digest = await put(content, seed, size);
    await budget.add(digest, size);
    await budget.idle();
    // Recency is in ms: the next fill is newer.
    await tick();
    return digest;
  };
  return { content, metadata, budget, evicted, held, fill };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 2));

describe('cache.maxBytes', () => {
  it('accepts byte counts and binary or decimal size strings', () => {
    expect(parseByteSize('cache.maxBytes', '50GiB')).toBe(50 * 2 ** 30);
    expect(parseByteSize('cache.maxBytes', '180MB')).toBe(180_000_000);
    expect(parseByteSize('cache.maxBytes', '1.5 KiB')).toBe(1536);
    expect(parseByteSize('cache.maxBytes', 4096)).toBe(4096);
    expect(() => parseByteSize('cache.maxBytes', '-1')).toThrow(/cache\.maxBytes/);
    expect(() => parseByteSize('cache.maxBytes', '10 parsecs')).toThrow(/"10 parsecs"/);
    expect(() => setup(0)).toThrow(/cache\.maxBytes/);
  });
});

describe('CacheBudget', () => {
  it('evicts the least recently used blob and its content; a use bumps recency', async () => {
    const { budget, held, fill, evicted } = setup(300);
    const a = await fill('a', 100);
    const b = await fill('b', 100);
    const c = await fill('c', 100);
    budget.use(a, 100)();
    await tick();
    await fill('d', 100);
    expect(evicted).toEqual([b]);
    expect([await held(a), await held(b), await held(c)]).toEqual([true, false, true]);
    expect(budget.totalBytes).toBe(300);
    expect(budget.count).toBe(3);
  });

  it('keeps a pinned blob\'s content until its last reader releases it', async () => {
    const { budget, held, fill } = setup(200);
    const a = await fill('a', 100);
    const releaseFirst = budget.use(a, 100);
    const releaseSecond = budget.use(a, 100);
    await tick();
    await fill('b', 100);
    await fill('c', 100);
    expect(budget.has(a)).toBe(false);
    expect(await held(a)).toBe(true);
    releaseFirst();
    releaseFirst();
    await budget.idle();
    expect(await held(a)).toBe(true);
    releaseSecond();
    await budget.idle();
    expect(await held(a)).toBe(false);
  });

  it('a fill claims the budget as its bytes arrive, in steps, never beyond the whole budget', async () => {
    const { budget, held, fill } = setup(4 * 64 * 1024);
    const a = await fill('a', 64 * 1024);
    const b = await fill('b', 64 * 1024);
    const claim = budget.reserve();
    await claim.grow(10);
    // One step (64 KiB) claimed: 3 of 4 steps in use, nothing evicted.
    expect(budget.totalBytes).toBe(3 * 64 * 1024);
    expect([await held(a), await held(b)]).toEqual([true, true]);
    await claim.grow(140 * 1024);
    await budget.idle();
    expect([await held(a), await held(b)]).toEqual([false, true]);
    await claim.grow(10 * 1024 * 1024);
    expect(budget.totalBytes).toBeLessThanOrEqual(4 * 64 * 1024 + 64 * 1024);
    claim.release();
    claim.release();
    expect(budget.totalBytes).toBe(budget.count === 0 ? 0 : 64 * 1024);
  });

  it('a claim the budget has room for is made at once, without a promise: a fill\'s first chunk is written on the event loop (issue 16)', async () => {
    const { budget, fill } = setup(64 * 64 * 1024);
    await fill('a', 64 * 1024);
    const claim = budget.reserve();
    // The first chunk of every fill and each new step: no eviction needed, so nothing to wait for.
    expect(claim.grow(10)).toBeUndefined();
    expect(claim.grow(200 * 1024)).toBeUndefined();
    expect(budget.totalBytes).toBe(64 * 1024 + 4 * 64 * 1024);
    // Past the budget the claim waits for the eviction that makes room.
    const waiting = claim.grow(62 * 64 * 1024);
    expect(waiting).toBeInstanceOf(Promise);
    await waiting;
    claim.release();
  });

  it('evictBytes frees at least the bytes asked, oldest first (disk full)', async () => {
    const { budget, held, fill } = setup(1000);
    const digests = [await fill('a', 100), await fill('b', 100), await fill('c', 100)];
    expect(await budget.evictBytes(150)).toBe(200);
    await budget.idle();
    expect(await Promise.all(digests.map(held))).toEqual([false, false, true]);
  });

  it('does not keep a blob larger than the whole budget', async () => {
    const { budget, held, fill } = setup(100);
    const huge = await fill('huge', 150);
    expect(await held(huge)).toBe(false);
    expect(budget.count).toBe(0);
  });

  it('never deletes a manifest, and drops the links of what it evicts', async () => {
    const { budget, metadata, held, fill } = setup(100);
    const shared = await fill('m', 60);
    await metadata.manifests.put({ digest: shared, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 60, references: [] });
    await metadata.links.add('docker.io/library/a', shared);
    const blob = await fill('x', 60);
    await metadata.links.add('docker.io/library/a', blob);
    await fill('y', 60);
    expect(await held(shared)).toBe(true);
    expect(await held(blob)).toBe(false);
    expect(await metadata.links.has('docker.io/library/a', shared)).toBe(true);
    expect(await metadata.links.has('docker.io/library/a', blob)).toBe(false);
  });

  it('at start, indexes content the index does not know (recency from its mtime) and evicts the oldest past the budget', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'budget-'));
    try {
      const content = await FsContentStore.open(root);
      const metadata = new MemoryMetadataStore();
      const now = Date.now();
      const digests = [];
      for (const [seed, age] of [['old', 3_000_000], ['middle', 2_000_000], ['recent', 1_000_000]] as const) {
        const digest = await put(content, seed, 100);
        const when = new Date(now - age);
        await utimes(content.layout.content(parseDigest(digest)), when, when);
        digests.push(digest);
      }
      await metadata.blobs.put(digestOf(Buffer.from('gone')).value, 50);
      const budget = new CacheBudget({ content, metadata, maxBytes: 200 });
      await budget.start('await');
      await budget.idle();
      const held = await Promise.all(digests.map(async (digest) => (await content.stat(parseDigest(digest))) !== undefined));
      expect(held).toEqual([false, true, true]);
      expect(await metadata.blobs.get(digestOf(Buffer.from('gone')).value)).toBeUndefined();
      expect(budget.totalBytes).toBe(200);
      expect((await metadata.blobs.get(digests[1]!))?.usedAt).toBe(Math.round(now - 2_000_000));
      await budget.close();
      await content.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
