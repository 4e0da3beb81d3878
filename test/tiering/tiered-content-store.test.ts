/**
 * The tiered store (issue 15 item 2) on a real Ceph RADOS Gateway: a fill lands in the bucket and
 * on the local disk; a blob only the bucket holds is streamed once and copied into the local
 * tier, after which it is served from the disk with S3 gone (warm GETs cost no S3 request); the
 * local tier stays within its budget, least recently used first out; a bucket that fails the
 * commit leaves no local copy and cuts followers; redirect mode presigns whatever the disk holds.
 * S3 outages use a second gateway on the same cluster, so no other suite loses S3.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../src/domain/digest.js';
import { UpstreamUnavailableError } from '../../src/domain/errors.js';
import type { BlobBody } from '../../src/storage/content-store.js';
import { followGrowingFile } from '../../src/storage/growing-file.js';
import { LocalTier } from '../../src/tiering/local-tier.js';
import { TieredContentStore } from '../../src/tiering/tiered-content-store.js';
import { S3_ENV, startExtraGateway, type Gateway } from '../helpers/ceph-s3.js';
import { waitFor } from '../helpers/http.js';
import { useS3 } from '../helpers/s3-suite.js';
import { seededBytes } from '../helpers/test-images.js';
import { MIB, S3Fixture, streamBytes, writeAll } from '../storage/s3-fixture.js';

const s3 = useS3();
/** For a gateway the test stops: fail fast. The shared gateway gets the defaults: a loaded CI machine makes Ceph slow. */
const FAST_FAILURE = { connectTimeoutMs: 1_000, firstByteTimeoutMs: 2_000, idleTimeoutMs: 2_000, maxAttempts: 1 };

describe.skipIf(!s3.available)('tiered content store: a local hot tier in front of S3', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function replica(fixture: S3Fixture, options: { maxBytes?: number; endpoint?: string; redirect?: boolean } = {}) {
    const dir = await mkdtemp(path.join(tmpdir(), 'tiered-'));
    const remote = fixture.store({ ...(options.endpoint ? { endpoint: options.endpoint } : {}), redirect: options.redirect ?? false }, options.endpoint ? FAST_FAILURE : {});
    const local = await LocalTier.open({ dir, maxBytes: options.maxBytes ?? 2 ** 30 });
    const store = new TieredContentStore({ local, remote });
    cleanups.push(async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    });
    return { store, local, dir };
  }

  function newFixture(): S3Fixture {
    const fixture = new S3Fixture(s3.target(), s3.prefix());
    cleanups.push(() => fixture.close());
    return fixture;
  }

  async function gateway(): Promise<Gateway | undefined> {
    const cephConf = s3.cephConf();
    if (!cephConf) return undefined;
    const started = await startExtraGateway(cephConf, path.join(path.dirname(cephConf), 'log'));
    cleanups.push(() => started.stop());
    return started;
  }

  async function fill(store: TieredContentStore, bytes: Buffer): Promise<Digest> {
    const digest = digestOf(bytes);
    await (await writeAll(await store.writer({ sizeHint: bytes.length }), bytes)).commit(digest, bytes.length);
    return digest;
  }

  async function bytesOf(body: BlobBody | undefined): Promise<Buffer> {
    if (body?.kind === 'stream') return streamBytes(body.stream);
    if (body?.kind === 'file') return Buffer.from(await import('node:fs/promises').then((fs) => fs.readFile(body.path)));
    throw new Error(`expected bytes, got ${body?.kind}`);
  }

  it('a fill is published in the bucket and on the local disk; another replica finds it in the bucket', async () => {
    const fixture = newFixture();
    const a = await replica(fixture);
    const bytes = seededBytes(12 * MIB, 'tiered-fill');
    const digest = await fill(a.store, bytes);
    expect(await fixture.keys()).toEqual([`blobs/sha256/${digest.hex.slice(0, 2)}/${digest.hex}`]);
    const local = await a.store.open(digest);
    expect(local?.kind).toBe('file');
    expect((await bytesOf(local)).equals(bytes)).toBe(true);
    const b = await replica(fixture);
    expect(await b.store.stat(digest)).toMatchObject({ size: bytes.length });
    expect(await b.local.sizeOf(digest)).toBeUndefined();
  });

  it('a blob only the bucket holds: streamed once, copied into the local tier, then served from the disk with S3 gone', async (context) => {
    const fixture = newFixture();
    const stoppable = await gateway();
    if (!stoppable) return context.skip(`no ceph.conf to start a second gateway: set ${S3_ENV.cephConf}`);
    const writer = await replica(fixture);
    const bytes = seededBytes(6 * MIB, 'tiered-promote');
    const digest = await fill(writer.store, bytes);
    const fresh = await replica(fixture, { endpoint: stoppable.endpoint });
    const first = await fresh.store.open(digest, { range: { start: 10, end: 19 } });
    expect(first?.kind).toBe('stream');
    expect((await bytesOf(first)).equals(bytes.subarray(10, 20))).toBe(true);
    await waitFor(async () => (await fresh.local.sizeOf(digest)) === bytes.length, 10_000, 'the local copy');
    await stoppable.stop();
    const warm = await fresh.store.open(digest);
    expect(warm?.kind).toBe('file');
    expect((await bytesOf(warm)).equals(bytes)).toBe(true);
    await expect(fresh.store.open(digestOf(Buffer.from('cold')))).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });

  it('the local tier stays within cache.maxBytes, least recently used first out; what it evicted still comes from the bucket', async () => {
    const fixture = newFixture();
    const a = await replica(fixture, { maxBytes: 10 * MIB });
    const blobs = [1, 2, 3].map((index) => seededBytes(4 * MIB, `tiered-lru-${index}`));
    const [first, second, third] = [await fill(a.store, blobs[0]!), await fill(a.store, blobs[1]!), undefined];
    await a.store.open(first); // first is now more recent than second
    const last = third ?? (await fill(a.store, blobs[2]!));
    await a.local.budget.idle();
    expect(await a.local.sizeOf(second)).toBeUndefined();
    await expect(stat(a.local.content.layout.content(second))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await a.local.sizeOf(first)).toBe(4 * MIB);
    expect(await a.local.sizeOf(last)).toBe(4 * MIB);
    expect(a.local.budget.totalBytes).toBeLessThanOrEqual(10 * MIB);
    const evicted = await a.store.open(second);
    expect(evicted?.kind).toBe('stream');
    expect((await bytesOf(evicted)).equals(blobs[1]!)).toBe(true);
  });

  it('the bucket failing the commit: no local copy, and readers following the fill are cut short', async (context) => {
    const fixture = newFixture();
    const stoppable = await gateway();
    if (!stoppable) return context.skip(`no ceph.conf to start a second gateway: set ${S3_ENV.cephConf}`);
    const a = await replica(fixture, { endpoint: stoppable.endpoint });
    const bytes = seededBytes(MIB, 'tiered-commit-fails');
    const digest = digestOf(bytes);
    const writer = await writeAll(await a.store.writer(), bytes);
    const follower = streamBytes(followGrowingFile(writer.growing!(), 0, bytes.length - 1));
    follower.catch(() => {});
    await stoppable.stop();
    await expect(writer.commit(digest, bytes.length)).rejects.toBeInstanceOf(UpstreamUnavailableError);
    await expect(follower).rejects.toThrow();
    expect(await a.local.sizeOf(digest)).toBeUndefined();
    await expect(stat(a.local.content.layout.content(digest))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('redirect mode: a client GET gets a presigned URL even for a local copy; reads for the mirror itself stay local', async () => {
    const fixture = newFixture();
    const a = await replica(fixture, { redirect: true });
    const bytes = seededBytes(MIB, 'tiered-redirect');
    const digest = await fill(a.store, bytes);
    const redirect = await a.store.open(digest, { allowRedirect: true, knownSize: bytes.length });
    expect(redirect?.kind).toBe('redirect');
    const fetched = await fetch((redirect as { url: string }).url);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(bytes)).toBe(true);
    expect((await a.store.open(digest))?.kind).toBe('file');
  });
});

if (!s3.available) {
  describe('tiered content store', () => {
    it.skip(s3.skipReason ?? 'S3 is not available', () => {});
  });
}
