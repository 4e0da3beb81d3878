/**
 * A fill's chunks reach the disk in writes of whole aligned blocks (src/storage/fs/write-gather.ts):
 * the page cache then holds the blob in large folios, which every later sendfile of it walks
 * faster. The writes are seen through the writer's file seam (`fsWriterFiles`); what readers see,
 * and when, through `written` and the wake-ups.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { digestOf } from '../../src/domain/digest.js';
import { FsWriter, fsWriterFiles } from '../../src/storage/fs/fs-writer.js';
import { GATHER_MAX_BLOCK_BYTES, GATHER_WAIT_MS, gatherBlockEnd } from '../../src/storage/fs/write-gather.js';
import { diskFillsUpAfter } from '../helpers/disk-full.js';
import { waitFor } from '../helpers/http.js';

const KiB = 1024;
const MiB = 1024 * KiB;

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'fs-gather-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(root, { recursive: true, force: true });
});

let writers = 0;
async function newWriter(): Promise<FsWriter> {
  writers += 1;
  return FsWriter.create(`w${writers}`, path.join(root, 'tmp', `w${writers}`), (digest) => path.join(root, 'blobs', digest.hex));
}

/** Every write of the writer's file, as [position, length], on the loop or in the thread pool. */
function recordWrites(): Array<[number, number]> {
  const writes: Array<[number, number]> = [];
  const { writeSync, write } = fsWriterFiles;
  vi.spyOn(fsWriterFiles, 'writeSync').mockImplementation((fd, bytes, offset, length, position) => {
    writes.push([position, length]);
    return writeSync(fd, bytes, offset, length, position);
  });
  vi.spyOn(fsWriterFiles, 'write').mockImplementation(async (fd, bytes, offset, length, position) => {
    writes.push([position, length]);
    return write(fd, bytes, offset, length, position);
  });
  return writes;
}

/** `total` random bytes cut into chunks of the sizes in `pattern`, over and over. */
function chunked(total: number, pattern: number[]): { bytes: Buffer; chunks: Buffer[] } {
  const bytes = Buffer.alloc(total);
  for (let index = 0; index < total; index++) bytes[index] = (index * 7919 + (index >> 11)) & 0xff;
  const chunks: Buffer[] = [];
  for (let offset = 0, turn = 0; offset < total; turn++) {
    const size = Math.min(pattern[turn % pattern.length]!, total - offset);
    chunks.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return { bytes, chunks };
}

/** The socket's reads as a fill sees them: 64 KiB and a few small pieces, at odd offsets. */
const SOCKET_READS = [64 * KiB - 321, 321, 64 * KiB, 37, 64 * KiB, 5_000];

describe('a fill written in whole blocks', () => {
  it('writes the first chunk at once, then blocks that double from 64 KiB to 1 MiB, each ending on a multiple of its size', async () => {
    const writes = recordWrites();
    const writer = await newWriter();
    const { bytes, chunks } = chunked(5 * MiB + 12_345, SOCKET_READS);
    for (const chunk of chunks) expect(writer.append(chunk)).toBeUndefined();
    await writer.commit(digestOf(bytes), bytes.length);

    expect(writes[0]).toEqual([0, chunks[0]!.length]);
    const ends = writes.map(([position, length]) => position + length);
    expect(ends).toEqual([chunks[0]!.length, 64 * KiB, 128 * KiB, 256 * KiB, 512 * KiB, MiB, 2 * MiB, 3 * MiB, 4 * MiB, 5 * MiB, bytes.length]);
    // Every write starts where the one before ended: one after the other, no byte twice.
    writes.slice(1).forEach(([position], index) => expect(position).toBe(ends[index]));
    expect(readFileSync(path.join(root, 'blobs', digestOf(bytes).hex)).equals(bytes)).toBe(true);
  });

  it('block ends: 64 KiB first, doubling with the position, never past 1 MiB apart', () => {
    expect(gatherBlockEnd(0)).toBe(64 * KiB);
    expect(gatherBlockEnd(65_000)).toBe(64 * KiB);
    expect(gatherBlockEnd(64 * KiB)).toBe(128 * KiB);
    expect(gatherBlockEnd(200 * KiB)).toBe(256 * KiB);
    expect(gatherBlockEnd(MiB - 1)).toBe(MiB);
    expect(gatherBlockEnd(MiB)).toBe(2 * MiB);
    expect(gatherBlockEnd(7 * MiB + 5)).toBe(8 * MiB);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (position) => {
        const end = gatherBlockEnd(position);
        expect(end).toBeGreaterThan(position);
        expect(end - position).toBeLessThanOrEqual(GATHER_MAX_BLOCK_BYTES);
        expect(end % Math.min(GATHER_MAX_BLOCK_BYTES, 64 * KiB)).toBe(0);
      }),
    );
  });

  it('holds gathered bytes back from readers, and writes them once they waited GATHER_WAIT_MS for the rest of their block', async () => {
    const writes = recordWrites();
    const writer = await newWriter();
    const { bytes, chunks } = chunked(64 * KiB + 100, [64 * KiB, 100]);
    writer.append(chunks[0]!);
    writer.append(chunks[1]!);
    expect(writer.written).toBe(64 * KiB);
    let woken = 0;
    writer.onceChanged(() => (woken += 1));
    const gatheredAt = performance.now();
    await waitFor(() => writer.written === bytes.length, 1_000, 'the gathered bytes to be written');
    expect(performance.now() - gatheredAt).toBeGreaterThanOrEqual(GATHER_WAIT_MS - 1);
    expect(writes).toEqual([[0, 64 * KiB], [64 * KiB, 100]]);
    await waitFor(() => woken === 1, 1_000, 'readers to be woken');
    await writer.commit(digestOf(bytes), bytes.length);
    expect(writes).toHaveLength(2);
  });

  it('while the disk is slow, whole blocks go through the thread pool, and only a block makes the fill wait', async () => {
    const writes = recordWrites();
    const { writeSync } = fsWriterFiles;
    // The first write takes longer than the disk should: writes leave the event loop for a while.
    vi.mocked(fsWriterFiles.writeSync).mockImplementationOnce((fd, bytes, offset, length, position) => {
      const until = performance.now() + 8;
      while (performance.now() < until);
      // The recording spy, which writes.
      return writeSync(fd, bytes, offset, length, position);
    });
    const threadPool = vi.mocked(fsWriterFiles.write);
    const writer = await newWriter();
    const { bytes, chunks } = chunked(2 * MiB + 5_000, SOCKET_READS);
    let waits = 0;
    for (const chunk of chunks) {
      const behind = writer.append(chunk);
      if (behind) {
        waits += 1;
        await behind;
      }
    }
    await writer.commit(digestOf(bytes), bytes.length);
    const ends = writes.map(([position, length]) => position + length);
    expect(ends).toEqual([chunks[0]!.length, 64 * KiB, 128 * KiB, 256 * KiB, 512 * KiB, MiB, 2 * MiB, bytes.length]);
    // Every block after the slow first write went through the thread pool, one write each.
    expect(threadPool).toHaveBeenCalledTimes(ends.length - 1);
    expect(waits).toBe(6);
    expect(readFileSync(path.join(root, 'blobs', digestOf(bytes).hex)).equals(bytes)).toBe(true);
  });

  it('while the disk is slow, the blocks of a large fill are written from two buffers, not a new one per block', async () => {
    const { writeSync, write } = fsWriterFiles;
    vi.spyOn(fsWriterFiles, 'writeSync').mockImplementationOnce((fd, bytes, offset, length, position) => {
      const until = performance.now() + 8;
      while (performance.now() < until);
      return writeSync(fd, bytes, offset, length, position);
    });
    const blockBuffers = new Set<ArrayBufferLike>();
    vi.spyOn(fsWriterFiles, 'write').mockImplementation(async (fd, bytes, offset, length, position) => {
      if (length === MiB) blockBuffers.add(bytes.buffer);
      return write(fd, bytes, offset, length, position);
    });
    const writer = await newWriter();
    const { bytes, chunks } = chunked(12 * MiB, SOCKET_READS);
    for (const chunk of chunks) await writer.append(chunk);
    await writer.commit(digestOf(bytes), bytes.length);
    expect(blockBuffers.size).toBeGreaterThanOrEqual(1);
    expect(blockBuffers.size).toBeLessThanOrEqual(2);
    expect(readFileSync(path.join(root, 'blobs', digestOf(bytes).hex)).equals(bytes)).toBe(true);
  });

  it('a chunk through the thread pool goes after the bytes gathered before it', async () => {
    const writer = await newWriter();
    const { bytes, chunks } = chunked(300 * KiB, [100 * KiB]);
    writer.append(chunks[0]!);
    writer.append(chunks[1]!);
    await writer.write(chunks[2]!);
    expect(writer.written).toBe(bytes.length);
    await writer.commit(digestOf(bytes), bytes.length);
    expect(readFileSync(path.join(root, 'blobs', digestOf(bytes).hex)).equals(bytes)).toBe(true);
  });

  it('a cancelled writer drops what it gathered and writes nothing more', async () => {
    const writes = recordWrites();
    const writer = await newWriter();
    const { chunks } = chunked(64 * KiB + 100, [64 * KiB, 100]);
    writer.append(chunks[0]!);
    writer.append(chunks[1]!);
    await writer.cancel(new Error('client gone'));
    await new Promise((resolve) => setTimeout(resolve, GATHER_WAIT_MS * 3));
    expect(writes).toEqual([[0, 64 * KiB]]);
    expect(writer.state).toBe('failed');
  });

  it('a disk that fills up while a block is written fails the writer: the next chunk is refused, the commit rejects with ENOSPC, the file is removed', async () => {
    diskFillsUpAfter(1);
    const writer = await newWriter();
    const { bytes, chunks } = chunked(256 * KiB, [64 * KiB]);
    expect(writer.append(chunks[0]!)).toBeUndefined();
    expect(() => writer.append(chunks[1]!)).toThrow(/ENOSPC/);
    expect(() => writer.append(chunks[2]!)).toThrow(/ENOSPC/);
    await expect(writer.commit(digestOf(bytes), bytes.length)).rejects.toThrow(/ENOSPC/);
    await writer.cancel();
    expect(() => readFileSync(writer.currentPath)).toThrow(/ENOENT/);
  });

  it('whatever the chunks and however writes alternate between the loop and the thread pool, the published file holds exactly the bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ size: fc.integer({ min: 1, max: 300 * KiB }), threadPool: fc.boolean(), pause: fc.boolean() }), { minLength: 1, maxLength: 24 }),
        async (steps) => {
          const total = steps.reduce((sum, step) => sum + step.size, 0);
          const { bytes } = chunked(total, [total]);
          const writer = await newWriter();
          let offset = 0;
          for (const step of steps) {
            const chunk = bytes.subarray(offset, offset + step.size);
            offset += step.size;
            await (step.threadPool ? writer.write(chunk) : writer.append(chunk));
            if (step.pause) await new Promise((resolve) => setTimeout(resolve, GATHER_WAIT_MS + 2));
          }
          await writer.commit(digestOf(bytes), total);
          expect(readFileSync(path.join(root, 'blobs', digestOf(bytes).hex)).equals(bytes)).toBe(true);
        },
      ),
      { numRuns: 25 },
    );
  });
});
