/**
 * A Readable over a blob that may still be downloading. It reads what is already on disk, then
 * waits for the ingest to report more, so a client joining a download gets its first byte at
 * once instead of after the whole blob (issue: one fetch, streamed to every client). Chunks are
 * 64 KiB: a herd of 50 clients each holds a chunk or two in flight, and RSS is a budget.
 *
 * The file descriptor is opened once; a POSIX rename (the commit) keeps it valid. When the
 * ingest fails, the stream is destroyed with the error, so the HTTP response is cut short and
 * can never end cleanly with a wrong body; the range's last byte waits for the digest check
 * (growing-blob.ts).
 */
import { Readable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import { GrowingBlob } from './growing-blob.js';
import type { BlobIngest } from './ingest-blob.js';

const CHUNK_BYTES = 64 * 1024;

/** Streams bytes [start, end] (inclusive) of the ingest's blob as they become available. */
export function followIngest(ingest: BlobIngest, start: number, end: number): Readable {
  const blob = new GrowingBlob(ingest);
  let handle: FileHandle | undefined;
  let position = start;

  const waitForBytes = () => new Promise<void>((resolve) => blob.onceChanged(resolve));

  return new Readable({
    highWaterMark: CHUNK_BYTES,
    async read() {
      try {
        handle ??= await blob.open();
        while (position <= end) {
          const available = blob.readable(position, end);
          if (available > 0) {
            const length = Math.min(available, CHUNK_BYTES);
            const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(length), 0, length, position);
            if (bytesRead === 0) throw new Error('blob file shrank while being read');
            position += bytesRead;
            this.push(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
            return;
          }
          await waitForBytes();
        }
        this.push(null);
      } catch (error) {
        this.destroy(error as Error);
      }
    },
    destroy(error, callback) {
      const closing = handle?.close();
      handle = undefined;
      (closing ?? Promise.resolve()).then(() => callback(error), () => callback(error));
    },
  });
}
