/**
 * Moves an upload's request body into a content-store writer in pieces of several MiB, never
 * one write per socket read: the S3 store keeps every write as an object of its own
 * (storage/s3/chunked-writer.ts: 36 MB/s in 8 MiB writes, 6 MB/s in 64 KiB ones), and on disk
 * fewer, larger writes cost fewer syscalls and promise turns. One piece is written while the
 * next fills, so memory stays at two pieces per upload whatever the blob's size (5 GiB layers
 * stream through), and the socket is read only as fast as the store writes (backpressure).
 */
import { MirrorError, SizeInvalidError } from '../domain/errors.js';
import type { ContentWriter } from '../storage/content-store.js';

export const DEFAULT_PIECE_BYTES = 8 * 1024 * 1024;

export interface BodyLimits {
  /** Bytes the body must have (Content-Length, or the length of a Content-Range); undefined: any. */
  expected?: number;
  pieceBytes?: number;
}

/**
 * Writes `body` to `writer`; resolves with the bytes written. Bytes that arrived before a
 * failure (the client hung up) are written too, so the upload's range tells the truth; the
 * failure is rethrown after, a broken body as SIZE_INVALID (distribution-spec "Error Codes":
 * the content's length is not the one announced), as is a body shorter or longer than `expected`.
 */
export async function writeBody(body: AsyncIterable<Uint8Array>, writer: ContentWriter, limits: BodyLimits = {}): Promise<number> {
  const pieceBytes = limits.pieceBytes ?? DEFAULT_PIECE_BYTES;
  // A small body announced as such needs no buffer of a full piece.
  const pieces = new PieceWriter(writer, limits.expected ? Math.min(pieceBytes, limits.expected) : pieceBytes);
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

/** Two buffers in turn: one being written, one filling. A writer is done with a chunk once its write resolves. */
class PieceWriter {
  received = 0;
  readonly #buffers: [Buffer, Buffer];
  #current = 0;
  #filled = 0;
  #writing: Promise<void> = Promise.resolve();

  constructor(private readonly writer: ContentWriter, private readonly pieceBytes: number) {
    this.#buffers = [Buffer.allocUnsafeSlow(0), Buffer.allocUnsafeSlow(0)];
  }

  async add(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const buffer = this.#buffer();
      const copied = Math.min(chunk.byteLength - offset, this.pieceBytes - this.#filled);
      buffer.set(chunk.subarray(offset, offset + copied), this.#filled);
      this.#filled += copied;
      offset += copied;
      if (this.#filled === this.pieceBytes) await this.#send();
    }
    this.received += chunk.byteLength;
  }

  /** Writes what is left and waits for every write. */
  async flush(): Promise<void> {
    if (this.#filled > 0) await this.#send();
    await this.#writing;
  }

  /** Waits for the write before last (its buffer is the next to fill), then starts this one. */
  async #send(): Promise<void> {
    const piece = this.#buffers[this.#current]!.subarray(0, this.#filled);
    await this.#writing;
    const write = this.writer.write(piece);
    // Awaited by the next piece or the flush; until then its failure must not count as unhandled.
    write.catch(() => {});
    this.#writing = write;
    this.#current = 1 - this.#current;
    this.#filled = 0;
  }

  #buffer(): Buffer {
    const index = this.#current;
    if (this.#buffers[index]!.byteLength < this.pieceBytes) this.#buffers[index] = Buffer.allocUnsafeSlow(this.pieceBytes);
    return this.#buffers[index]!;
  }
}
