/**
 * Moves an upload's request body into a content-store writer in pieces of the size the store
 * wants, never one write per socket read: the S3 store keeps every write as an object of its own
 * (storage/s3/chunked-writer.ts: 36 MB/s in 8 MiB writes, 6 MB/s in 64 KiB ones), so 8 MiB
 * there; on disk 256 KiB, a few queued. Memory stays at `depth` pieces per upload whatever the
 * blob's size (5 GiB layers stream through), and the socket is read only as fast as the store
 * writes (backpressure).
 */
import { MirrorError, SizeInvalidError } from '../domain/errors.js';
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
  const pieces = new PieceWriter(writer, limits.expected ? Math.min(bytes, limits.expected) : bytes, depth);
  let failure: unknown;
  try {
    for await (const chunk of bodyOf(body)) {
      if (limits.expected !== undefined && pieces.received + chunk.byteLength > limits.expected) {
        throw new SizeInvalidError(`the body is longer than the ${limits.expected} bytes announced`);
      }
      await pieces.add(chunk);
    }
  } catch (error) {
    failure = error;
  }
  await pieces.flush();
  if (failure !== undefined) throw failure;
  if (limits.expected !== undefined && pieces.received !== limits.expected) {
    throw new SizeInvalidError(`the body has ${pieces.received} bytes, not the ${limits.expected} announced`);
  }
  return pieces.received;
}

/** The body's chunks; the body breaking off (the client hung up, a short body) is SIZE_INVALID, a writer's failure stays its own. */
async function* bodyOf(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  const chunks = body[Symbol.asyncIterator]();
  let received = 0;
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await chunks.next();
    } catch (error) {
      throw error instanceof MirrorError ? error : new SizeInvalidError(`the request body broke off after ${received} bytes (${(error as Error).message})`);
    }
    if (next.done) return;
    received += next.value.byteLength;
    yield next.value;
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
  #current = 0;
  #filled = 0;
  #sent = 0;
  #flushedAt = 0;
  #flushing: Promise<void> = Promise.resolve();

  constructor(private readonly writer: ContentWriter, private readonly pieceBytes: number, private readonly depth: number) {}

  async add(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const buffer = await this.#buffer();
      const copied = Math.min(chunk.byteLength - offset, this.pieceBytes - this.#filled);
      buffer.set(chunk.subarray(offset, offset + copied), this.#filled);
      this.#filled += copied;
      offset += copied;
      if (this.#filled === this.pieceBytes) this.#send();
    }
    this.received += chunk.byteLength;
  }

  /** Writes what is left and waits for every write (the first failure is thrown) and any early flush. */
  async flush(): Promise<void> {
    if (this.#filled > 0) this.#send();
    for (const write of this.#writes) await write;
    await this.#flushing;
  }

  #send(): void {
    const write = this.writer.write(this.#buffers[this.#current]!.subarray(0, this.#filled));
    // Awaited before its buffer is reused, or by the flush; until then its failure must not count as unhandled.
    write.catch(() => {});
    this.#writes[this.#current] = write;
    this.#current = (this.#current + 1) % this.depth;
    this.#sent += this.#filled;
    this.#filled = 0;
    if (this.writer.flushSoFar && this.#sent - this.#flushedAt >= FLUSH_EVERY_BYTES) {
      this.#flushedAt = this.#sent;
      // One flush at a time, after the write that completes these bytes; it never rejects.
      this.#flushing = Promise.all([this.#flushing, write.catch(() => {})]).then(() => this.writer.flushSoFar!());
    }
  }

  /** The buffer to fill, once its previous write is done. */
  async #buffer(): Promise<Buffer> {
    const index = this.#current;
    if (this.#filled === 0) await this.#writes[index];
    if ((this.#buffers[index]?.byteLength ?? 0) < this.pieceBytes) this.#buffers[index] = Buffer.allocUnsafeSlow(this.pieceBytes);
    return this.#buffers[index]!;
  }
}
