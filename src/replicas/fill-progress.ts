/**
 * How far a download's file may be read, sent from the worker that downloads it to another
 * worker of its machine that serves the same blob from that file (owner-file-follow.ts).
 * The follower reads the bytes from the disk they share. Sending it the bytes too, only for
 * it to count and drop them, copied every followed blob once more through loopback TCP: two
 * kernel copies and a socket read loop per blob.
 *
 * The body is a line per advance: the count of bytes readable from the start of the file, in
 * decimal, then a newline. Counts only grow; the last is the blob's size, and the owner sends it
 * only once its digest check passed (the GrowingFile holds the last byte back until then). If the
 * download fails the owner cuts the response, so a follower never sees a clean end short of the
 * size.
 */
import { Readable } from 'node:stream';
import { UpstreamUnavailableError } from '../domain/errors.js';
import type { GrowingFile } from '../storage/content-store.js';

/** The longest record a follower accepts: 2^53 has 16 digits. */
const MAX_RECORD_CHARS = 20;

/** A count of bytes as the records and X-Mirror-Fill-Progress spell it: decimal, no leading zero, a safe integer. */
export function parseByteCount(text: string): number | undefined {
  const count = /^(0|[1-9][0-9]{0,15})$/.test(text) ? Number(text) : NaN;
  return Number.isSafeInteger(count) ? count : undefined;
}

/** The progress of `file`, a download of `size` bytes (at least one), as records; ends once all of it is readable. */
export function fillProgress(file: GrowingFile, size: number): Readable {
  let reported = 0;
  let cancelWait: (() => void) | undefined;
  const stream = new Readable({
    read() {
      report();
    },
    destroy(error, callback) {
      cancelWait?.();
      callback(error);
    },
  });
  function report(): void {
    cancelWait = undefined;
    if (stream.destroyed) return;
    let readable: number;
    try {
      readable = file.readable(0, size - 1);
    } catch (error) {
      stream.destroy(error as Error);
      return;
    }
    if (readable > reported) {
      reported = readable;
      stream.push(`${readable}\n`);
      if (reported === size) stream.push(null);
      return;
    }
    cancelWait = file.onceChanged(report);
  }
  return stream;
}

/**
 * Reads records as they arrive in chunks cut anywhere; each count must be larger than the last
 * and at most `size`. Anything else is the owner's fault (UpstreamUnavailableError).
 */
export class FillProgressReader {
  #partial = '';
  #count = 0;

  constructor(private readonly size: number, private readonly describe: string) {}

  /** The count after `chunk`. */
  read(chunk: Uint8Array): number {
    const lines = (this.#partial + Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('latin1')).split('\n');
    this.#partial = lines.pop()!;
    if (this.#partial.length > MAX_RECORD_CHARS) throw this.#fault(`a progress record longer than ${MAX_RECORD_CHARS} characters`);
    for (const line of lines) this.#advance(line);
    return this.#count;
  }

  #advance(line: string): void {
    const count = parseByteCount(line);
    if (count === undefined) throw this.#fault(`a progress record that is not a byte count (${JSON.stringify(line.slice(0, MAX_RECORD_CHARS))})`);
    if (count > this.size) throw this.#fault(`progress past its ${this.size} bytes (${count})`);
    if (count <= this.#count) throw this.#fault(`progress that did not advance (${count} after ${this.#count})`);
    this.#count = count;
  }

  #fault(what: string): UpstreamUnavailableError {
    return new UpstreamUnavailableError(`${this.describe} sent ${what}`);
  }
}
