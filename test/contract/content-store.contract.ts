/**
 * The contract every ContentStore keeps (src/storage/content-store.ts), run against each
 * implementation by a `*.test.ts` beside this file. Rules: nothing is visible under a digest
 * until a commit checked size and digest; a failed or cancelled writer leaves nothing; committing
 * a digest twice is not an error; resumable writers continue by id and are re-hashed; readers of
 * a growing writer never get a range's last byte before the digest check; `append`, where a store
 * has it, never keeps a chunk's memory, and neither counts nor shows bytes it holds back.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf, type Digest } from '../../src/domain/digest.js';
import { DigestInvalidError, SizeInvalidError } from '../../src/domain/errors.js';
import type { ContentStore, ContentWriter } from '../../src/storage/content-store.js';
import { followGrowingFile } from '../../src/storage/growing-file.js';
import { readContent } from '../../src/storage/read-content.js';
import { seededBytes } from '../helpers/test-images.js';

export interface ContentStoreFixture {
  store: ContentStore;
  /** Opens another store on the same backing storage (another process, or after a restart). */
  reopen(): Promise<ContentStore>;
  cleanup(): Promise<void>;
}

async function bytesOf(store: ContentStore, digest: Digest, range?: { start: number; end: number }): Promise<Buffer | undefined> {
  const stream = await readContent(store, digest, range);
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function written(writer: ContentWriter, bytes: Buffer, pieces = 3): Promise<ContentWriter> {
  const step = Math.max(1, Math.ceil(bytes.length / pieces));
  for (let offset = 0; offset < bytes.length; offset += step) await writer.write(bytes.subarray(offset, offset + step));
  return writer;
}

/**
 * Hands `source` to `put` in pieces of `size` through one buffer, overwritten once `put` returned
 * (or its promise settled), as a fill's connection reuses its read buffer.
 */
async function throughOneBuffer(source: Buffer, size: number, put: (chunk: Buffer) => Promise<void> | undefined): Promise<void> {
  const reused = Buffer.alloc(size);
  for (let offset = 0; offset < source.length; offset += size) {
    const piece = source.subarray(offset, offset + size);
    piece.copy(reused);
    await put(reused.subarray(0, piece.length));
    reused.fill(0xee);
  }
}

async function listed(store: ContentStore): Promise<string[]> {
  const digests: string[] = [];
  for await (const entry of store.list()) digests.push(`${entry.digest.value}=${entry.size}`);
  return digests.sort();
}

export function contentStoreContract(name: string, open: () => Promise<ContentStoreFixture>): void {
  describe(`ContentStore contract: ${name}`, () => {
    const bytes = seededBytes(200_000, `contract-${name}`);
    const digest = digestOf(bytes);
    let fixture: ContentStoreFixture;
    let store: ContentStore;
    beforeEach(async () => {
      fixture = await open();
      store = fixture.store;
    });
    afterEach(async () => fixture.cleanup());

    it('publishes a committed writer under its digest: stat, read, open, list', async () => {
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.open(digest)).toBeUndefined();
      const writer = await written(await store.writer(), bytes);
      expect(writer.written).toBe(bytes.length);
      expect(await store.stat(digest)).toBeUndefined();
      expect(await writer.commit(digest, bytes.length)).toEqual({ digest, size: bytes.length });
      expect(await store.stat(digest)).toMatchObject({ digest, size: bytes.length });
      expect((await store.read(digest))?.equals(bytes)).toBe(true);
      expect((await bytesOf(store, digest))?.equals(bytes)).toBe(true);
      expect(await listed(store)).toEqual([`${digest.value}=${bytes.length}`]);
    });

    it('refuses a wrong digest or size at commit, publishes nothing and cancels the writer', async () => {
      const other = digestOf(Buffer.from('other'));
      const wrongDigest = await written(await store.writer(), bytes);
      await expect(wrongDigest.commit(other)).rejects.toBeInstanceOf(DigestInvalidError);
      await expect(wrongDigest.write(Buffer.from('more'))).rejects.toThrow();
      const wrongSize = await written(await store.writer(), bytes);
      await expect(wrongSize.commit(digest, bytes.length + 1)).rejects.toBeInstanceOf(SizeInvalidError);
      expect(await store.stat(other)).toBeUndefined();
      expect(await store.stat(digest)).toBeUndefined();
      expect(await listed(store)).toEqual([]);
    });

    it('cancel is idempotent, leaves nothing, and is a no-op after a commit', async () => {
      const cancelled = await written(await store.writer(), bytes);
      await cancelled.cancel();
      await cancelled.cancel();
      await expect(cancelled.commit(digest)).rejects.toThrow();
      expect(await store.stat(digest)).toBeUndefined();
      const committed = await written(await store.writer(), bytes);
      await committed.commit(digest);
      await committed.cancel();
      expect(await store.stat(digest)).toMatchObject({ size: bytes.length });
      expect(await listed(store)).toEqual([`${digest.value}=${bytes.length}`]);
    });

    it('two writers committing the same digest both succeed, with the same bytes', async () => {
      const [first, second] = await Promise.all([store.writer(), store.writer()]);
      await Promise.all([written(first!, bytes), written(second!, bytes, 7)]);
      await Promise.all([first!.commit(digest), second!.commit(digest)]);
      expect((await bytesOf(store, digest))?.equals(bytes)).toBe(true);
      expect(await listed(store)).toEqual([`${digest.value}=${bytes.length}`]);
    });

    it('a chunk\'s memory may be reused once its write settled: the stored bytes are those written', async () => {
      const writer = await store.writer();
      await throughOneBuffer(bytes, 3_000, (chunk) => writer.write(chunk));
      expect(await writer.commit(digest, bytes.length)).toEqual({ digest, size: bytes.length });
      expect((await bytesOf(store, digest))?.equals(bytes)).toBe(true);
    });

    // `append` is optional (a fill uses `write` where a store has none): these cases run where it exists.
    it('append: a chunk\'s memory may be reused as soon as append returns (or its promise settles); the stored bytes are those appended', async () => {
      const writer = await store.writer();
      const append = writer.append?.bind(writer);
      if (!append) return writer.cancel();
      await throughOneBuffer(bytes, 7_001, append);
      expect(await writer.commit(digest, bytes.length)).toEqual({ digest, size: bytes.length });
      expect((await bytesOf(store, digest))?.equals(bytes)).toBe(true);
    });

    it('append: bytes held back are neither counted in written nor readable by followers; the commit writes them before its check', async () => {
      const writer = await store.writer();
      if (!writer.append) return writer.cancel();
      const file = writer.growing?.();
      const follower = file ? collect(followGrowingFile(file, 0, Infinity)) : undefined;
      let appended = 0;
      for (const size of [1, 100, 65_536, 3, 70_000]) {
        await writer.append(bytes.subarray(appended, appended + size));
        appended += size;
        expect(writer.written).toBeLessThanOrEqual(appended);
        if (file) expect(file.readable(0, Infinity)).toBeLessThanOrEqual(writer.written);
      }
      await writer.append(bytes.subarray(appended));
      expect(await writer.commit(digest, bytes.length)).toEqual({ digest, size: bytes.length });
      expect(writer.written).toBe(bytes.length);
      expect((await bytesOf(store, digest))?.equals(bytes)).toBe(true);
      if (follower) expect((await follower).equals(bytes)).toBe(true);
    });

    it('append: a fill whose bytes fail the check publishes nothing and cuts its followers short, bytes held back or not', async () => {
      const writer = await store.writer();
      if (!writer.append) return writer.cancel();
      const file = writer.growing?.();
      const follower = file ? collect(followGrowingFile(file, 0, Infinity)).catch((error: Error) => error) : undefined;
      const corrupt = Buffer.from(bytes);
      corrupt[corrupt.length - 1] = corrupt[corrupt.length - 1]! ^ 0xff;
      for (let offset = 0; offset < corrupt.length; offset += 30_000) await writer.append(corrupt.subarray(offset, offset + 30_000));
      await expect(writer.commit(digest, bytes.length)).rejects.toBeInstanceOf(DigestInvalidError);
      expect(await store.stat(digest)).toBeUndefined();
      expect(await listed(store)).toEqual([]);
      if (follower) expect(String(await follower)).toMatch(/hash to/);
    });

    it('append: a cancelled fill leaves nothing, with bytes still held back', async () => {
      const writer = await store.writer();
      if (!writer.append) return writer.cancel();
      await writer.append(bytes.subarray(0, 1));
      await writer.append(bytes.subarray(1, 5_000));
      await writer.cancel();
      await expect(writer.commit(digest)).rejects.toThrow();
      expect(await store.stat(digest)).toBeUndefined();
      expect(await listed(store)).toEqual([]);
    });

    it('a digest committed again later (a blob pushed twice) succeeds and leaves one copy, readable whole', async () => {
      await (await written(await store.writer(), bytes)).commit(digest);
      const again = await written(await store.writer(), bytes, 5);
      expect(await again.commit(digest, bytes.length)).toEqual({ digest, size: bytes.length });
      expect((await bytesOf(store, digest))?.equals(bytes)).toBe(true);
      expect(await listed(store)).toEqual([`${digest.value}=${bytes.length}`]);
    });

    it('serves byte ranges, first and last bytes included', async () => {
      await (await written(await store.writer(), bytes)).commit(digest);
      expect((await bytesOf(store, digest, { start: 0, end: 0 }))?.equals(bytes.subarray(0, 1))).toBe(true);
      expect((await bytesOf(store, digest, { start: 1000, end: 4999 }))?.equals(bytes.subarray(1000, 5000))).toBe(true);
      expect((await bytesOf(store, digest, { start: bytes.length - 10, end: bytes.length - 1 }))?.equals(bytes.subarray(-10))).toBe(true);
    });

    it('deletes content; deleting what is absent is not an error', async () => {
      await (await written(await store.writer(), bytes)).commit(digest);
      await store.delete(digest);
      await store.delete(digest);
      expect(await store.stat(digest)).toBeUndefined();
      expect(await store.read(digest)).toBeUndefined();
      expect(await listed(store)).toEqual([]);
    });

    it('commits empty content and content under sha512', async () => {
      const empty = digestOf(Buffer.alloc(0));
      await (await store.writer()).commit(empty, 0);
      expect(await store.stat(empty)).toMatchObject({ size: 0 });
      const sha512 = digestOf(bytes, 'sha512');
      await (await written(await store.writer(), bytes)).commit(sha512);
      expect((await store.read(sha512))?.equals(bytes)).toBe(true);
    });

    it('continues a resumable writer by id from another store instance, re-hashing what it holds', async () => {
      const first = await store.writer({ resumable: true });
      await first.write(bytes.subarray(0, 70_000));
      const elsewhere = await fixture.reopen();
      const resumed = await elsewhere.writer({ resumeId: first.id });
      expect(resumed.id).toBe(first.id);
      expect(resumed.written).toBe(70_000);
      await resumed.write(bytes.subarray(70_000));
      await resumed.commit(digest, bytes.length);
      expect((await store.read(digest))?.equals(bytes)).toBe(true);
      await expect(elsewhere.writer({ resumeId: first.id })).rejects.toThrow();
      if (elsewhere !== store) await elsewhere.close();
    });

    it('refuses to resume an unknown writer', async () => {
      await expect(store.writer({ resumeId: '00000000-0000-4000-8000-000000000000' })).rejects.toThrow();
      await expect(store.writer({ resumeId: '../../etc/passwd' })).rejects.toThrow();
    });

    it('expireWriters removes resumable writers idle since the cutoff, not newer ones', async () => {
      const old = await store.writer({ resumable: true });
      await old.write(bytes.subarray(0, 10));
      expect(await store.expireWriters(Date.now() - 60_000)).toEqual([]);
      expect(await store.expireWriters(Date.now() + 60_000)).toEqual([old.id]);
      await expect(store.writer({ resumeId: old.id })).rejects.toThrow();
    });

    it('a growing writer: what is written may be read, the last byte only after the digest check', async () => {
      const writer = await store.writer();
      const file = writer.growing?.();
      if (!file) return; // this store has no followers: readers wait for the commit
      expect(file.readable(0, bytes.length - 1)).toBe(0);
      await writer.write(bytes.subarray(0, 4_000));
      expect(file.readable(0, bytes.length - 1)).toBe(4_000);
      expect(file.readable(1_000, 1_999)).toBe(999);
      expect(file.readable(0, Infinity)).toBe(3_999);
      expect(file.finalSize()).toBeUndefined();
      await writer.write(bytes.subarray(4_000));
      const follower = collect(followGrowingFile(file, 0, Infinity));
      await writer.commit(digest);
      expect(file.readable(1_000, 1_999)).toBe(1_000);
      expect(file.finalSize()).toBe(bytes.length);
      expect((await follower).equals(bytes)).toBe(true);
    });

    it('a growing writer that fails its check: followers are cut short and see the failure', async () => {
      const writer = await store.writer();
      const file = writer.growing?.();
      if (!file) return;
      const corrupt = Buffer.from(bytes);
      corrupt[5] = corrupt[5]! ^ 0xff;
      const known = collect(followGrowingFile(file, 0, bytes.length - 1)).catch((error: Error) => error);
      const unknown = collect(followGrowingFile(file, 0, Infinity)).catch((error: Error) => error);
      await written(writer, corrupt);
      await expect(writer.commit(digest)).rejects.toBeInstanceOf(DigestInvalidError);
      expect(String(await known)).toMatch(/hash to/);
      expect(String(await unknown)).toMatch(/hash to/);
      expect(() => file.readable(0, 10)).toThrow(/hash to/);
      expect(() => file.openSync()).toThrow();
    });

    it('a growing writer wakes a waiting reader once per call, and the wait can be cancelled', async () => {
      const writer = await store.writer();
      const file = writer.growing?.();
      if (!file) return;
      let wakes = 0;
      file.onceChanged(() => wakes++);
      file.onceChanged(() => (wakes += 100))();
      await writer.write(bytes.subarray(0, 10));
      await writer.write(bytes.subarray(10, 20));
      expect(wakes).toBe(1);
      file.onceChanged(() => wakes++);
      await writer.cancel(new Error('upstream went away'));
      expect(wakes).toBe(2);
      expect(() => file.readable(0, 10)).toThrow(/upstream went away/);
    });
  });
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

