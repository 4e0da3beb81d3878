/**
 * A Readable over a blob that may still be downloading. It reads what is already on disk, then
 * waits for the ingest to report more, so a client joining a download gets its first byte at
 * once instead of after the whole blob (issue: one fetch, streamed to every client). Chunks are
 * 64 KiB: a herd of 50 clients each holds a chunk or two in flight, and RSS is a budget.
 *
 * The file descriptor is opened once; a POSIX rename (the commit) keeps it valid. When the
 * ingest fails, the stream is destroyed with the error, so the HTTP response is cut short and
 * can never end cleanly with a wrong body.
 */
import { Readable } from 'node:stream';
import { open, type FileHandle } from 'node:fs/promises';
import type { BlobIngest } from './ingest-blob.js';

const CHUNK_BYTES = 64 * 1024;

/** Streams bytes [start, end] (inclusive) of the ingest's blob as they become available. */
export function followIngest(ingest: BlobIngest, start: number, end: number): Readable {
  let handle: FileHandle | undefined;
  let position = start;

  const waitForBytes = () =>
    new Promise<void>((resolve) => {
      const wake = () => {
        ingest.off('progress', wake);
        ingest.off('settled', wake);
        resolve();
      };
      ingest.on('progress', wake);
      ingest.on('settled', wake);
    });

  return new Readable({
    highWaterMark: CHUNK_BYTES,
    async read() {
      try {
        handle ??= await openCurrent(ingest);
        while (position <= end) {
          if (ingest.state === 'failed') throw ingest.failure ?? new Error('upstream fetch failed');
          // The range's last byte waits for commit() to check size and digest: a client holding
          // every byte of its Content-Length has a complete response, whatever the socket does next.
          const limit = ingest.state === 'committed' ? end + 1 : end;
          const available = Math.min(ingest.written, limit) - position;
          if (available > 0) {
            const length = Math.min(available, CHUNK_BYTES);
            const { bytesRead, buffer } = await handle.read(Buffer.allocUnsafe(length), 0, length, position);
            if (bytesRead === 0) throw new Error('blob file shrank while being read');
            position += bytesRead;
            this.push(bytesRead === length ? buffer : buffer.subarray(0, bytesRead));
            return;
          }
          if (ingest.state === 'committed') throw new Error('blob ended before the requested range');
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

/** The temp file may be renamed between our check and the open; then it is at its final path. */
async function openCurrent(ingest: BlobIngest): Promise<FileHandle> {
  try {
    return await open(ingest.currentPath, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || ingest.state === 'failed') throw ingest.failure ?? error;
    return open(ingest.finalPath, 'r');
  }
}
