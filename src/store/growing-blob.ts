/**
 * A blob file still being downloaded, as its readers see it (follow-file.ts streams it,
 * http/send-file-zero-copy.ts sends it with sendfile): how far it may be read now, when to look
 * again, and where the file is.
 *
 * The range's last byte is never readable before the ingest's commit has checked size and
 * digest: a client holding every byte of its Content-Length has a complete response, whatever
 * the socket does next, so a blob that fails its check must be cut short one byte early at the
 * latest.
 */
import { openSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { BlobIngest } from './ingest-blob.js';

export class GrowingBlob {
  constructor(private readonly ingest: BlobIngest) {}

  /**
   * How many bytes of the range ending (inclusive) at `end` may be read from `position` now; 0
   * means wait for a change. Throws the ingest's failure, and an error when the blob was
   * published shorter than the range.
   */
  readable(position: number, end: number): number {
    const { ingest } = this;
    if (ingest.state === 'failed') throw ingest.failure ?? new Error('upstream fetch failed');
    const limit = ingest.state === 'committed' ? end + 1 : end;
    const available = Math.min(ingest.written, limit) - position;
    if (available <= 0 && ingest.state === 'committed') throw new Error('blob ended before the requested range');
    return Math.max(0, available);
  }

  /** Calls `listener` once, at the ingest's next progress or settle; returns a cancel function. */
  onceChanged(listener: () => void): () => void {
    const { ingest } = this;
    const wake = () => {
      cancel();
      listener();
    };
    const cancel = () => {
      ingest.off('progress', wake);
      ingest.off('settled', wake);
    };
    ingest.on('progress', wake);
    ingest.on('settled', wake);
    return cancel;
  }

  /** The file wherever it is now: the commit renames the temp file, and an open descriptor survives that. */
  async open(): Promise<FileHandle> {
    try {
      return await open(this.ingest.currentPath, 'r');
    } catch (error) {
      throw this.#failureOr(error) ?? (await open(this.ingest.finalPath, 'r'));
    }
  }

  /** open(), synchronously: for senders on the event loop (a local open of a file being written). */
  openSync(): number {
    try {
      return openSync(this.ingest.currentPath, 'r');
    } catch (error) {
      const failure = this.#failureOr(error);
      if (failure) throw failure;
      return openSync(this.ingest.finalPath, 'r');
    }
  }

  /** What to throw instead of retrying at the final path (undefined: retry there). */
  #failureOr(error: unknown): unknown {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || this.ingest.state === 'failed') return this.ingest.failure ?? error;
    return undefined;
  }
}
