/**
 * Upload bodies into content-store writers (src/hosted/upload-body.ts): in pieces of several
 * MiB whatever the socket's chunking (the S3 store keeps each write as an object), memory
 * bounded to two pieces, broken or mis-sized bodies refused as SIZE_INVALID with what arrived
 * kept. The writer is the in-memory store's real one, wrapped to record each write.
 */
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { digestOf } from '../../src/domain/digest.js';
import { SizeInvalidError } from '../../src/domain/errors.js';
import { FILE_STORE_PIECES, FLUSH_EVERY_BYTES, OBJECT_STORE_PIECES, writeBody } from '../../src/hosted/upload-body.js';
import type { ContentWriter } from '../../src/storage/content-store.js';
import { MemoryContentStore } from '../../src/storage/memory/memory-content-store.js';
import { waitFor } from '../helpers/http.js';
import { seededBytes } from '../helpers/test-images.js';

const MiB = 1024 * 1024;

/** A real writer whose writes are recorded: sizes, and how many run at once. */
async function recordingWriter(store = new MemoryContentStore()): Promise<{ writer: ContentWriter; sizes: number[]; maxInFlight: () => number; store: MemoryContentStore }> {
  const inner = await store.writer({ resumable: true });
  const sizes: number[] = [];
  let inFlight = 0;
  let max = 0;
  const writer: ContentWriter = {
    get id() { return inner.id; },
    get written() { return inner.written; },
    async write(chunk) {
      sizes.push(chunk.byteLength);
      inFlight += 1;
      max = Math.max(max, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 2));
      // Copied now: what the writer was handed must not change under it until the write resolves.
      await inner.write(Buffer.from(chunk));
      inFlight -= 1;
    },
    commit: (digest, size) => inner.commit(digest, size),
    cancel: (reason) => inner.cancel(reason),
  };
  return { writer, sizes, maxInFlight: () => max, store };
}

async function* chunksOf(bytes: Buffer, chunk = 65_536): AsyncIterable<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += chunk) yield bytes.subarray(offset, offset + chunk);
}

async function* brokenChunks(bytes: Buffer, at: number): AsyncIterable<Uint8Array> {
  yield* chunksOf(bytes.subarray(0, at));
  throw new Error('aborted');
}

describe.each([
  { kind: 'an async iterable (a web stream)', wrap: (body: AsyncIterable<Uint8Array>) => body },
  { kind: 'a Node stream (the request itself)', wrap: (body: AsyncIterable<Uint8Array>) => Readable.from(body, { objectMode: false }) },
])('writeBody from $kind', ({ wrap }) => {
  const socketChunks = (bytes: Buffer, chunk?: number) => wrap(chunksOf(bytes, chunk));
  const brokenAfter = (bytes: Buffer, at: number) => wrap(brokenChunks(bytes, at));

  it('writes 64 KiB socket chunks as 8 MiB pieces for object stores, the last one the rest, bytes intact', async () => {
    const bytes = seededBytes(20 * MiB + 123, 'pieces');
    const { writer, sizes, maxInFlight } = await recordingWriter();
    expect(await writeBody(socketChunks(bytes), writer)).toBe(bytes.length);
    expect(sizes).toEqual([8 * MiB, 8 * MiB, 4 * MiB + 123]);
    expect(maxInFlight()).toBeLessThanOrEqual(OBJECT_STORE_PIECES.depth);
    expect((await writer.commit(digestOf(bytes))).size).toBe(bytes.length);
  });

  it('writes 256 KiB pieces to the file store, a few queued at once, bytes intact', async () => {
    const bytes = seededBytes(3 * MiB + 5, 'file-pieces');
    const { writer, sizes, maxInFlight } = await recordingWriter();
    await writeBody(socketChunks(bytes, 100_000), writer, { pieces: FILE_STORE_PIECES });
    expect(sizes).toEqual([...Array<number>(12).fill(256 * 1024), 5]);
    expect(maxInFlight()).toBeGreaterThan(1);
    expect(maxInFlight()).toBeLessThanOrEqual(FILE_STORE_PIECES.depth);
    expect((await writer.commit(digestOf(bytes))).size).toBe(bytes.length);
  });

  it('a small announced body gets a buffer of its size, written once', async () => {
    const bytes = seededBytes(1000, 'small');
    const { writer, sizes } = await recordingWriter();
    await writeBody(socketChunks(bytes, 100), writer, { expected: 1000 });
    expect(sizes).toEqual([1000]);
  });

  it('asks a writer that can to flush early every 64 MiB, after the writes those bytes took, one flush at a time', async () => {
    const bytes = Buffer.alloc(130 * MiB, 1);
    const { writer } = await recordingWriter();
    const flushedAt: number[] = [];
    let flushing = 0;
    let overlapped = false;
    const flushable: ContentWriter = Object.assign(Object.create(writer) as ContentWriter, {
      async flushSoFar() {
        overlapped ||= flushing > 0;
        flushing += 1;
        flushedAt.push(writer.written);
        await new Promise((resolve) => setTimeout(resolve, 20));
        flushing -= 1;
      },
    });
    await writeBody(socketChunks(bytes, 1024 * 1024), flushable, { pieces: FILE_STORE_PIECES });
    await waitFor(() => flushedAt.length === 2 && flushing === 0, 5000, 'both flushes done');
    expect(flushedAt[0]).toBeGreaterThanOrEqual(FLUSH_EVERY_BYTES);
    expect(flushedAt[1]).toBeGreaterThanOrEqual(2 * FLUSH_EVERY_BYTES);
    expect(overlapped).toBe(false);
  });

  it('a body that breaks off: what arrived is kept, then SIZE_INVALID', async () => {
    const bytes = seededBytes(9 * MiB, 'broken');
    const { writer } = await recordingWriter();
    await expect(writeBody(brokenAfter(bytes, 3 * MiB), writer)).rejects.toThrow(SizeInvalidError);
    expect(writer.written).toBe(3 * MiB);
  });

  it('a body shorter or longer than announced: SIZE_INVALID', async () => {
    const bytes = seededBytes(5000, 'length');
    for (const expected of [4999, 5001]) {
      const { writer } = await recordingWriter();
      await expect(writeBody(socketChunks(bytes, 1000), writer, { expected })).rejects.toThrow(SizeInvalidError);
    }
  });

  it('a writer that fails: its error, not an unhandled rejection', async () => {
    const { writer } = await recordingWriter();
    const failing: ContentWriter = { ...writer, id: writer.id, written: 0, write: async () => Promise.reject(new Error('disk full')) };
    const failure = await writeBody(socketChunks(seededBytes(17 * MiB, 'fail')), failing).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect(failure).not.toBeInstanceOf(SizeInvalidError);
    expect((failure as Error).message).toBe('disk full');
  });
});
