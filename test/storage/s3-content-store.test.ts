/**
 * The S3 content store against a real S3 server (Ceph RADOS Gateway, test/helpers/ceph-s3.ts),
 * rule by rule of src/storage/content-store.ts. Assertions stay at the interface (plus what the
 * bucket holds afterwards), so they can move onto the shared contract suite. Blobs of 12-13 MiB
 * take the multipart paths (parts of 5 MiB, S3's minimum); smaller ones the single-request ones.
 */
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf } from '../../src/domain/digest.js';
import { BadRequestError, BlobUnknownError, DigestInvalidError, RangeNotSatisfiableError, SizeInvalidError } from '../../src/domain/errors.js';
import { useS3 } from '../helpers/s3-suite.js';
import { seededBytes } from '../helpers/test-images.js';
import { blobKey, bodyBytes, MIB, S3Fixture, writeAll } from './s3-fixture.js';

const s3 = useS3();
const SMALL_PARTS = { part: 5 * MIB };

describe.skipIf(!s3.available)('S3 content store (Ceph RGW)', () => {
  let fixture: S3Fixture;
  const big = seededBytes(12 * MIB + 12_345, 's3-big');
  const bigDigest = digestOf(big);
  const small = seededBytes(200_000, 's3-small');
  const smallDigest = digestOf(small);

  beforeEach(() => {
    fixture = new S3Fixture(s3.target(), s3.prefix());
  });
  afterEach(async () => fixture.close());

  it('publishes only at commit, under the digest key alone, with no upload or temporary key left', async () => {
    const store = fixture.store({}, { sizes: SMALL_PARTS });
    const writer = await writeAll(await store.writer(), big);
    expect(writer.written).toBe(big.length);
    expect(await fixture.multipartUploads()).toEqual([`tmp/${writer.id}`]);
    expect(await store.stat(bigDigest)).toBeUndefined();
    expect(await writer.commit(bigDigest, big.length)).toEqual({ digest: bigDigest, size: big.length });
    expect(await store.stat(bigDigest)).toEqual({ digest: bigDigest, size: big.length });
    expect((await store.read(bigDigest))?.equals(big)).toBe(true);
    expect(await fixture.keys()).toEqual([blobKey(bigDigest)]);
    expect(await fixture.multipartUploads()).toEqual([]);
    await (await writeAll(await store.writer(), small)).commit(smallDigest, small.length);
    expect((await bodyBytes(store, smallDigest))?.equals(small)).toBe(true);
    expect(await fixture.keys()).toEqual([blobKey(bigDigest), blobKey(smallDigest)].sort());
  });

  it.each([
    ['a wrong digest', () => digestOf(Buffer.from('other')), undefined, DigestInvalidError],
    ['a wrong size', () => bigDigest, big.length + 1, SizeInvalidError],
  ])('refuses %s at commit: nothing published, upload aborted, temporary key gone, writer cancelled', async (_name, expected, size, errorClass) => {
    const store = fixture.store({}, { sizes: SMALL_PARTS });
    const writer = await writeAll(await store.writer(), big);
    await expect(writer.commit(expected(), size)).rejects.toBeInstanceOf(errorClass);
    await expect(writer.write(Buffer.from('more'))).rejects.toThrow();
    expect(await store.stat(expected())).toBeUndefined();
    expect(await fixture.keys()).toEqual([]);
    expect(await fixture.multipartUploads()).toEqual([]);
  });

  it('cancel aborts the multipart upload, is idempotent, and is a no-op after a commit', async () => {
    const store = fixture.store({}, { sizes: SMALL_PARTS });
    const cancelled = await writeAll(await store.writer(), big);
    expect(await fixture.multipartUploads()).toHaveLength(1);
    await cancelled.cancel();
    await cancelled.cancel();
    await expect(cancelled.commit(bigDigest)).rejects.toThrow();
    expect(await fixture.multipartUploads()).toEqual([]);
    expect(await fixture.keys()).toEqual([]);
    const committed = await writeAll(await store.writer(), small);
    await committed.commit(smallDigest);
    await committed.cancel();
    expect((await store.read(smallDigest))?.equals(small)).toBe(true);
  });

  it('two writers (two replicas) committing the same digest both succeed, with the same bytes', async () => {
    const [first, second] = [fixture.store({}, { sizes: SMALL_PARTS }), fixture.store({}, { sizes: SMALL_PARTS })];
    const writers = await Promise.all([first.writer(), second.writer()]);
    await Promise.all([writeAll(writers[0]!, big), writeAll(writers[1]!, big, 999_999)]);
    const results = await Promise.all(writers.map((writer) => writer.commit(bigDigest, big.length)));
    expect(results).toEqual([{ digest: bigDigest, size: big.length }, { digest: bigDigest, size: big.length }]);
    expect((await second.read(bigDigest))?.equals(big)).toBe(true);
    expect(await fixture.keys()).toEqual([blobKey(bigDigest)]);
    expect(await fixture.multipartUploads()).toEqual([]);
  });

  it('serves byte ranges exactly, reporting the whole size, and refuses a range past the end', async () => {
    const store = fixture.store({}, { sizes: SMALL_PARTS });
    await (await writeAll(await store.writer(), big)).commit(bigDigest);
    for (const [start, end] of [[0, 0], [1000, 4999], [5 * MIB - 3, 5 * MIB + 2], [big.length - 10, big.length - 1]] as const) {
      expect((await bodyBytes(store, bigDigest, { start, end }))?.equals(big.subarray(start, end + 1))).toBe(true);
    }
    const body = await store.open(bigDigest, { range: { start: 10, end: 19 } });
    expect(body).toMatchObject({ kind: 'stream', size: big.length });
    await expect(store.open(bigDigest, { range: { start: big.length, end: big.length + 5 } })).rejects.toBeInstanceOf(RangeNotSatisfiableError);
  });

  it('deletes content; deleting what is absent is not an error', async () => {
    const store = fixture.store();
    await (await writeAll(await store.writer(), small)).commit(smallDigest);
    await store.delete(smallDigest);
    await store.delete(smallDigest);
    expect(await store.stat(smallDigest)).toBeUndefined();
    expect(await store.read(smallDigest)).toBeUndefined();
    expect(await store.open(smallDigest)).toBeUndefined();
    expect(await fixture.keys()).toEqual([]);
  });

  it('commits empty content, and sha512 content through the multipart path', async () => {
    const store = fixture.store({}, { sizes: SMALL_PARTS });
    const empty = digestOf(Buffer.alloc(0));
    await (await store.writer()).commit(empty, 0);
    expect(await store.stat(empty)).toEqual({ digest: empty, size: 0 });
    const sha512 = digestOf(big, 'sha512');
    await (await writeAll(await store.writer(), big)).commit(sha512, big.length);
    expect((await store.read(sha512))?.equals(big)).toBe(true);
    expect(await fixture.keys()).toEqual([blobKey(empty), blobKey(sha512)].sort());
  });

  it('above the single-copy limit, publishes by multipart copy (UploadPartCopy)', async () => {
    const store = fixture.store({}, { sizes: { part: 5 * MIB, maxCopyObject: 6 * MIB, copyPart: 5 * MIB } });
    await (await writeAll(await store.writer(), big)).commit(bigDigest);
    expect((await store.read(bigDigest))?.equals(big)).toBe(true);
    // A multipart object's ETag ends in "-<parts>": 12 MiB + a bit in 5 MiB copy parts is 3.
    const head = await fixture.inspector.send(new HeadObjectCommand({ Bucket: fixture.target.bucket, Key: fixture.prefix + blobKey(bigDigest) }));
    expect(head.ETag).toMatch(/-3"$/);
    expect(await fixture.keys()).toEqual([blobKey(bigDigest)]);
    expect(await fixture.multipartUploads()).toEqual([]);
  });

  it.each([['a cache fill', {}], ['an upload session', { resumable: true }]])('%s applies writes issued without waiting in call order', async (_name, options) => {
    const store = fixture.store({}, { sizes: SMALL_PARTS });
    const writer = await store.writer(options);
    const pieces = Array.from({ length: 12 }, (_, index) => big.subarray(index * MIB, (index + 1) * MIB));
    await Promise.all([...pieces.map((piece) => writer.write(piece)), writer.write(big.subarray(12 * MIB))]);
    await writer.commit(bigDigest, big.length);
    expect((await store.read(bigDigest))?.equals(big)).toBe(true);
  });

  it('lists every stored digest with its size across several pages, and nothing else', async () => {
    const store = fixture.store({}, { listPageSize: 2 });
    const blobs = [1, 2, 3, 4, 5].map((n) => seededBytes(n * 1000, `list-${n}`));
    for (const blob of blobs) await (await writeAll(await store.writer(), blob)).commit(digestOf(blob));
    await (await store.writer({ resumable: true })).write(Buffer.from('an upload in progress'));
    const listed: string[] = [];
    for await (const entry of store.list()) listed.push(`${entry.digest.value}=${entry.size}`);
    expect(listed.sort()).toEqual(blobs.map((blob) => `${digestOf(blob).value}=${blob.length}`).sort());
  });
});

describe.skipIf(!s3.available)('S3 content store: resumable writers', () => {
  let fixture: S3Fixture;
  beforeEach(() => {
    fixture = new S3Fixture(s3.target(), s3.prefix());
  });
  afterEach(async () => fixture.close());

  it('continues by id on another replica, composing small chunks (< 5 MiB) and large ones', async () => {
    const smallPart = 18 * 300_000; // 18 chunks of 300 kB: the first gathered part (>= 5 MiB)
    const bytes = seededBytes(smallPart + 7 * MIB, 'resume');
    const digest = digestOf(bytes);
    const first = fixture.store({}, { sizes: SMALL_PARTS });
    const writer = await first.writer({ resumable: true });
    for (let offset = 0; offset < smallPart; offset += 300_000) await writer.write(bytes.subarray(offset, offset + 300_000));
    const elsewhere = fixture.store({}, { sizes: SMALL_PARTS });
    const resumed = await elsewhere.writer({ resumeId: writer.id });
    expect(resumed.id).toBe(writer.id);
    expect(resumed.written).toBe(smallPart);
    await resumed.write(bytes.subarray(smallPart, smallPart + 5 * MIB)); // one chunk, copied server-side
    await resumed.write(bytes.subarray(smallPart + 5 * MIB)); // the short last part
    expect(await resumed.commit(digest, bytes.length)).toEqual({ digest, size: bytes.length });
    expect((await first.read(digest))?.equals(bytes)).toBe(true);
    const head = await fixture.inspector.send(new HeadObjectCommand({ Bucket: fixture.target.bucket, Key: fixture.prefix + blobKey(digest) }));
    expect(head.ETag).toMatch(/-3"$/);
    expect(await fixture.keys()).toEqual([blobKey(digest)]);
    expect(await fixture.multipartUploads()).toEqual([]);
    await expect(first.writer({ resumeId: writer.id })).rejects.toBeInstanceOf(BlobUnknownError);
  });

  it('re-hashes what it holds when resumed: bytes changed in S3 are refused at commit', async () => {
    const bytes = seededBytes(100_000, 'tamper');
    const store = fixture.store();
    const writer = await store.writer({ resumable: true });
    await writer.write(bytes.subarray(0, 50_000));
    const [chunkKey] = (await fixture.keys()).filter((key) => key.includes('/chunks/'));
    const tampered = Buffer.from(bytes.subarray(0, 50_000));
    tampered[7] = tampered[7]! ^ 0xff;
    await fixture.inspector.send(new PutObjectCommand({ Bucket: fixture.target.bucket, Key: fixture.prefix + chunkKey, Body: tampered }));
    const resumed = await fixture.store().writer({ resumeId: writer.id });
    expect(resumed.written).toBe(50_000);
    await resumed.write(bytes.subarray(50_000));
    await expect(resumed.commit(digestOf(bytes))).rejects.toBeInstanceOf(DigestInvalidError);
    expect(await fixture.keys()).toEqual([]);
  });

  it('two replicas appending to one upload at once: each commits only what it hashed, a later resume is refused', async () => {
    const bytes = seededBytes(100_000, 'race');
    const [replicaA, replicaB] = [fixture.store(), fixture.store()];
    const a = await replicaA.writer({ resumable: true });
    await a.write(bytes.subarray(0, 50_000));
    const b = await replicaB.writer({ resumeId: a.id });
    await Promise.all([a.write(bytes.subarray(50_000)), b.write(seededBytes(50_000, 'race-other'))]);
    await expect(replicaB.writer({ resumeId: a.id })).rejects.toBeInstanceOf(BlobUnknownError);
    expect(await a.commit(digestOf(bytes), bytes.length)).toEqual({ digest: digestOf(bytes), size: bytes.length });
    expect((await replicaB.read(digestOf(bytes)))?.equals(bytes)).toBe(true);
    await expect(b.commit(digestOf(bytes))).rejects.toBeInstanceOf(DigestInvalidError);
    expect(await fixture.keys()).toEqual([blobKey(digestOf(bytes))]);
  });

  it('refuses to resume an unknown writer or a malformed id', async () => {
    const store = fixture.store();
    await expect(store.writer({ resumeId: '00000000-0000-4000-8000-000000000000' })).rejects.toBeInstanceOf(BlobUnknownError);
    await expect(store.writer({ resumeId: '../../etc/passwd' })).rejects.toBeInstanceOf(BadRequestError);
  });

  it('cancel removes every chunk, the ones another replica stored included', async () => {
    const store = fixture.store();
    const writer = await store.writer({ resumable: true });
    await writer.write(Buffer.from('first chunk'));
    const resumed = await fixture.store().writer({ resumeId: writer.id });
    await resumed.write(Buffer.from('second chunk'));
    await writer.cancel();
    await writer.cancel();
    expect(await fixture.keys()).toEqual([]);
  });

  it('expireWriters removes idle resumable writers and abandoned fills, never a fill this process owns', async () => {
    const replicaA = fixture.store({}, { sizes: SMALL_PARTS });
    const replicaB = fixture.store({}, { sizes: SMALL_PARTS });
    const upload = await replicaA.writer({ resumable: true });
    await upload.write(Buffer.from('ten bytes!'));
    const fill = await writeAll(await replicaA.writer(), seededBytes(6 * MIB, 'fill'));
    expect(await fixture.multipartUploads()).toEqual([`tmp/${fill.id}`]);
    expect(await replicaB.expireWriters(Date.now() - 60_000)).toEqual([]);
    expect(await replicaA.expireWriters(Date.now() + 60_000)).toEqual([upload.id]);
    expect(await fixture.multipartUploads()).toEqual([`tmp/${fill.id}`]);
    await expect(replicaB.writer({ resumeId: upload.id })).rejects.toBeInstanceOf(BlobUnknownError);
    expect(await replicaB.expireWriters(Date.now() + 60_000)).toEqual([]);
    expect(await fixture.multipartUploads()).toEqual([]);
    expect(await fixture.keys()).toEqual([]);
  });
});
