/**
 * Readable streams over content files: one still being written (a cache fill that clients join)
 * and one already published. A follower reads what is on disk, then waits for the writer to
 * report more, so a client joining a download gets its first byte at once instead of after the
 * whole blob. Chunks are 64 KiB: a herd of 50 clients each holds a chunk or two in flight, and
 * RSS is a budget.
 *
 * The descriptor is opened once; the commit's rename keeps it valid. When the write fails the
 * stream is destroyed with the error, so an HTTP response is cut short and can never end cleanly
 * with a wrong body: the range's last byte waits for the digest check (content-store.ts
 * GrowingFile).
 */
import { close, read } from 'node:fs';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { GrowingFile } from './content-store.js';

const CHUNK_BYTES = 64 * 1024;
const readAt = promisify(read);

/**
 * Bytes [start, end] (inclusive) of `file` as they become readable. `end` may be Infinity when
 * the size is not known yet: the stream then ends where the committed content ends.
 */
export function followGrowingFile(file: GrowingFile, start: number, end: number): Readable {
  let fd: number | undefined;
  let position = start;
  const lastByte = () => {
    if (end !== Infinity) return end;
    const size = file.finalSize();
    return size === undefined ? Infinity : size - 1;
  };

  return new Readable({
    highWaterMark: CHUNK_BYTES,
    async read() {
      try {
        fd ??= file.openSync();
        for (;;) {
          const last = lastByte();
          if (position > last) return void this.push(null);
          const available = file.readable(position, last);
          if (available > 0) return void this.push(await readChunk(fd, position, Math.min(available, CHUNK_BYTES), (bytes) => (position += bytes)));
          // The commit may have just made the size known: look again before waiting.
          if (last === Infinity && file.finalSize() !== undefined) continue;
          await new Promise<void>((resolve) => file.onceChanged(resolve));
        }
      } catch (error) {
        this.destroy(error as Error);
      }
    },
    destroy(error, callback) {
      if (fd !== undefined) close(fd, () => {});
      fd = undefined;
      callback(error);
    },
  });
}

async function readChunk(fd: number, position: number, length: number, advance: (bytes: number) => void): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length);
  const { bytesRead } = await readAt(fd, buffer, 0, length, position);
  if (bytesRead === 0) throw new Error('the content file shrank while being read');
  advance(bytesRead);
  return bytesRead === length ? buffer : buffer.subarray(0, bytesRead);
}
