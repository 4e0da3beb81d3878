/**
 * Moves an upload's request body into a content-store writer in pieces of the size the store
 * wants, never one write per socket read: the S3 store keeps every write as an object of its own
 * (storage/s3/chunked-writer.ts: 36 MB/s in 8 MiB writes, 6 MB/s in 64 KiB ones), so 8 MiB
 * there; on disk 256 KiB, a few queued. Memory stays at `depth` pieces per upload whatever the
 * blob's size (5 GiB layers stream through), and the socket is read only as fast as the store
 * writes (backpressure).
 */
import { Readable } from 'node:stream';
import { MirrorError, SizeInvalidError } from '../domain/errors.js';
import { bodyHeap } from '../http/body-heap.js';
import { pumpBody } from '../pull-through/body-pump.js';
import type { ContentWriter } from '../storage/content-store.js';

/** How a store wants its writes: `bytes` per write, at most `depth` writes queued at once. */
export interface PieceSize {
  bytes: number;
  depth: number;
}

/**
 * A writer that can flush early (ContentWriter.flushSoFar) is asked to after every this many
 * bytes: on disk, a 1 GiB upload's commit then syncs tens of MiB, not the whole GiB at the end
 * (0.9 s of a 7.7 s upload measured on the benchmark machine).
 */
export const FLUSH_EVERY_BYTES = 64 * 1024 * 1024;

/** Object storage: each write is an object, so few and large (storage/s3/chunked-writer.ts). */
export const OBJECT_STORE_PIECES: PieceSize = { bytes: 8 * 1024 * 1024, depth: 2 };
/**
 * The local disk: writes go to the page cache, and a short queue of small writes keeps the
 * socket read while the disk and the hash work; 8 MiB writes stalled the socket for tens of
 * milliseconds each (upload throughput half that of 256 KiB ones in the push benchmark).
 */
export const FILE_STORE_PIECES: PieceSize = { bytes: 256 * 1024, depth: 4 };

export interface BodyLimits {
  /** Bytes the body must have (Content-Length, or the length of a Content-Range); undefined: any. */
  expected?: number;
  /** Default OBJECT_STORE_PIECES, the size every store copes with. */
  pieces?: PieceSize;
  /** Whether a writer that can flush early (`flushSoFar`) is asked to; default true. */
  flushEarly?: boolean;
}

/**
 * Writes `body` to `writer`; resolves with the bytes written. Bytes that arrived before a
 * failure (the client hung up) are written too, so the upload's range tells the truth; the
 * failure is rethrown after, a broken body as SIZE_INVALID (distribution-spec "Error Codes":
 * the content's length is not the one announced), as is a body shorter or longer than `expected`.
 */
export async function writeBody(body: AsyncIterable<Uint8Array>, writer: ContentWriter, limits: BodyLimits = {}): Promise<number> {
  const { bytes, depth } = limits.pieces ?? OBJECT_STORE_PIECES;
  // A small body announced as such needs no buffer of a full piece.
  const pieces = new PieceWriter(writer, limits.expected ? Math.min(bytes, limits.expected) : bytes, depth, limits.flushEarly ?? true);
  let failure: unknown;
  // While the body streams in, freed chunks' pages are kept for the next chunks (http/body-heap.ts).
  const release = bodyHeap.hold();
  try {
    await (body instanceof Readable ? readStreamInto(body, pieces, limits.expected) : readInto(body, pieces, limits.expected));
  } catch (error) {
    failure = error;
  } finally {
    release();
  }
  await pieces.flush();
  if (failure !== undefined) throw failure;
  if (limits.expected !== undefined && pieces.received !== limits.expected) {
    throw new SizeInvalidError(`the body has ${pieces.received} bytes, not the ${limits.expected} announced`);
  }
  return pieces.received;
}

/**
 * A Node stream (the request itself, under @hono/node-server) is read by its 'data' events,
 * paused while a buffer waits for its write, as upstream bodies are (pumpBody): no promise per
 * chunk at all. The body breaking off (the client hung up) is SIZE_INVALID; a writer's failure
 * stays its own.
 */
async function readStreamInto(stream: Readable, pieces: PieceWriter, expected: number | undefined): Promise<void> {
  let writerFailure: unknown;
  try {
    await pumpBody(stream, (chunk) => {
      if (expected !== undefined && pieces.received + chunk.byteLength > expected) throw new SizeInvalidError(`the body is longer than the ${expected} bytes announced`);
      return pieces.add(chunk)?.catch((error: unknown) => {
        writerFailure = error;
        throw error;
      });
    });
  } catch (error) {
    if (error === writerFailure || error instanceof MirrorError) throw error;
    throw new SizeInvalidError(`the request body broke off after ${pieces.received} bytes (${(error as Error).message})`);
  }
}

/**
 * Reads the body into the pieces: one promise per socket read and none more unless a buffer
 * must wait for its write (promises are what the upload path costs per chunk, more so with
 * async context tracking on). The body breaking off (the client hung up, a short body) is
 * SIZE_INVALID; a writer's failure stays its own.
 */
async function readInto(body: AsyncIterable<Uint8Array>, pieces: PieceWriter, expected: number | undefined): Promise<void> {
  const chunks = body[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await chunks.next();
    } catch (error) {
      throw error instanceof MirrorError ? error : new SizeInvalidError(`the request body broke off after ${pieces.received} bytes (${(error as Error).message})`);
    }
    if (next.done) return;
    if (expected !== undefined && pieces.received + next.value.byteLength > expected) {
      await chunks.return?.();
      throw new SizeInvalidError(`the body is longer than the ${expected} bytes announced`);
    }
    const waiting = pieces.add(next.value);
    if (waiting) await waiting;
  }
}

/**
 * A ring of buffers: one filling while the writes of the others are queued at the writer, so
 * the socket keeps being read while the store works. A buffer is filled again only once its
 * write resolved: a writer is done with a chunk then.
 */
class PieceWriter {
  received = 0;
  readonly #buffers: Buffer[] = [];
  readonly #writes: Array<Promise<void> | undefined> = [];
  /** Whether the write of each buffer is still running. */
  readonly #pending: boolean[] = [];
  #current = 0;
  #filled = 0;
  #sent = 0;
  #flushedAt = 0;
  #flushing: Promise<void> = Promise.resolve();

  constructor(private readonly writer: ContentWriter, private readonly pieceBytes: number, private readonly depth: number, private readonly flushEarly: boolean) {}

  /** Copies the chunk in; a promise only when a buffer had to wait for its write. */
  add(chunk: Uint8Array, from = 0): Promise<void> | undefined {
    let offset = from;
    while (offset < chunk.byteLength) {
      const buffer = this.#buffer();
      if (!buffer) return this.#writes[this.#current]!.then(() => this.add(chunk, offset));
      const copied = Math.min(chunk.byteLength - offset, this.pieceBytes - this.#filled);
      buffer.set(chunk.subarray(offset, offset + copied), this.#filled);
      this.#filled += copied;
      this.received += copied;
      offset += copied;
      if (this.#filled === this.pieceBytes) this.#send();
    }
    return undefined;
  }

  /**
   * Writes what is left and waits for every write (the first failure is thrown). An early flush
   * still running is left to finish on its own: a chunk's answer does not wait for the disk,
   * and the commit syncs everything anyway.
   */
  async flush(): Promise<void> {
    if (this.#filled > 0) this.#send();
    for (const write of this.#writes) await write;
  }

  #send(): void {
    const index = this.#current;
    const write = this.writer.write(this.#buffers[index]!.subarray(0, this.#filled));
    this.#pending[index] = true;
    // Awaited before its buffer is reused, or by the flush; until then its failure must not count as unhandled.
    write.then(() => (this.#pending[index] = false), () => {});
    this.#writes[index] = write;
    this.#current = (this.#current + 1) % this.depth;
    this.#sent += this.#filled;
    this.#filled = 0;
    if (this.flushEarly && this.writer.flushSoFar && this.#sent - this.#flushedAt >= FLUSH_EVERY_BYTES) {
      this.#flushedAt = this.#sent;
      // One flush at a time, after the write that completes these bytes; it never rejects.
      this.#flushing = Promise.all([this.#flushing, write.catch(() => {})]).then(() => this.writer.flushSoFar!());
    }
  }

  /** The buffer to fill; undefined while its previous write is still running. */
  #buffer(): Buffer | undefined {
    const index = this.#current;
    if (this.#filled === 0 && this.#pending[index]) return undefined;
    if ((this.#buffers[index]?.byteLength ?? 0) < this.pieceBytes) this.#buffers[index] = Buffer.allocUnsafeSlow(this.pieceBytes);
    return this.#buffers[index]!;
  }
}
