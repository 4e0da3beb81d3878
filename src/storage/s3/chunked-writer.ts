/**
 * A resumable writer (an upload session, which any replica may continue): every write is stored
 * as a readable object before it resolves (uploads/<id>/chunks/<offset>), so another process
 * resuming the writer by id finds every accepted byte, hashes it again, and goes on. The parts
 * of an unfinished multipart upload cannot be read back, which is why chunks are whole objects.
 *
 * Each write costs one PutObject (pieces above the part size are split), so callers should hand
 * over large pieces: a PATCH body gathered into pieces of a few MiB, not 64 KiB socket reads
 * (scripts/s3-store-measure.ts, Ceph RGW on 2 busy cores: 36 MB/s in 8 MiB writes, 6 MB/s in
 * 64 KiB ones).
 *
 * The commit checks digest and size, then builds the digest key in one multipart upload from the
 * chunks (compose-plan.ts: server-side copies for chunks of 5 MiB or more, gathered uploads for
 * smaller ones; one chunk alone is copied, a small total put whole) and deletes the chunks.
 *
 * Only hashed bytes are published because a chunk is immutable: its key is unique (s3-keys.ts),
 * so a second writer on the same upload (a client PATCHing two replicas at once) adds chunks
 * beside it and never replaces it, and a resume that finds two chunks at one offset refuses the
 * upload. Reads also send the hashed ETag (If-Match), and copies x-amz-copy-source-if-match,
 * which AWS and MinIO enforce; Ceph RGW 16.2 ignores the latter (it reads x-amz-copy-if-match),
 * so it is a second line, not the first.
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { createDigester, type Digest } from '../../domain/digest.js';
import { BlobUnknownError, DigestInvalidError, MirrorError, UpstreamUnavailableError } from '../../domain/errors.js';
import type { ContentWriter } from '../content-store.js';
import { orderChunks, planParts, type StoredChunk } from './compose-plan.js';
import { composeObject, copyObject, type PartSource, putObject } from './publish.js';
import type { S3Bucket } from './s3-bucket.js';
import { isPreconditionFailed } from './s3-errors.js';
import { STREAMING_ALGORITHM, verifyDigest } from './verify-digest.js';

type State = 'open' | 'committing' | 'done';

export class ChunkedWriter implements ContentWriter {
  readonly #bucket: S3Bucket;
  readonly #hash = createDigester(STREAMING_ALGORITHM);
  readonly #chunks: StoredChunk[];
  #written: number;
  #writing: Promise<void> = Promise.resolve();
  #state: State = 'open';
  #failure: Error | undefined;

  private constructor(bucket: S3Bucket, readonly id: string, chunks: StoredChunk[], written: number) {
    this.#bucket = bucket;
    this.#chunks = chunks;
    this.#written = written;
  }

  /** A new writer: its marker object says it exists (and, by its age, since when). */
  static async create(bucket: S3Bucket, id: string): Promise<ChunkedWriter> {
    await putObject(bucket, bucket.keys.uploadMarker(id), Buffer.alloc(0), `start upload ${id}`);
    return new ChunkedWriter(bucket, id, [], 0);
  }

  /** The writer `id` as S3 holds it, whoever wrote it: every chunk is hashed again. */
  static async resume(bucket: S3Bucket, id: string): Promise<ChunkedWriter> {
    const { marker, chunks } = await listUpload(bucket, id);
    if (!marker) throw new BlobUnknownError(`no upload ${id} in S3 (finished, cancelled or expired)`);
    let ordered: ReturnType<typeof orderChunks>;
    try {
      ordered = orderChunks(chunks);
    } catch (error) {
      throw new BlobUnknownError(`upload ${id} cannot be continued: ${(error as Error).message}`);
    }
    const writer = new ChunkedWriter(bucket, id, ordered.chunks, ordered.size);
    for (const chunk of ordered.chunks) await readChunk(bucket, chunk, (bytes) => writer.#hash.update(bytes));
    return writer;
  }

  get written(): number {
    return this.#written;
  }

  /** Resolves once the bytes are stored in S3; writes are applied in call order. */
  write(chunk: Uint8Array): Promise<void> {
    const next = this.#writing.then(() => this.#append(chunk));
    this.#writing = next.catch(() => {});
    return next;
  }

  async #append(chunk: Uint8Array): Promise<void> {
    this.#assertOpen();
    const maxChunk = this.#bucket.sizes.part;
    for (let start = 0; start < chunk.length; start += maxChunk) {
      const piece = chunk.subarray(start, start + maxChunk);
      const key = this.#bucket.keys.chunk(this.id, this.#written);
      const stored = await this.#bucket.call(`store ${key}`, () =>
        this.#bucket.client.send(new PutObjectCommand({ Bucket: this.#bucket.name, Key: key, Body: piece, ContentLength: piece.length })),
      );
      // Hashed only once stored: a failed write leaves the writer as it was.
      this.#hash.update(piece);
      this.#chunks.push({ key, offset: this.#written, size: piece.length, etag: stored.ETag ?? '' });
      this.#written += piece.length;
    }
  }

  async commit(expected: Digest, size?: number): Promise<{ digest: Digest; size: number }> {
    await this.#writing;
    this.#assertOpen();
    this.#state = 'committing';
    try {
      const held = { size: this.#written, streamingHex: this.#hash.copy().digest('hex'), replay: (update: (bytes: Uint8Array) => void) => this.#replay(update) };
      await verifyDigest(held, expected, size);
      await this.#publish(expected);
    } catch (error) {
      this.#state = 'done';
      this.#failure = error as Error;
      // A mismatch ends the writer; an outage leaves the chunks for a later resume (or expiry).
      if (!(error instanceof UpstreamUnavailableError)) await this.#removeAll();
      throw error;
    }
    this.#state = 'done';
    await this.#removeAll();
    return { digest: expected, size: this.#written };
  }

  async cancel(reason?: Error): Promise<void> {
    await this.#writing;
    this.#failure ??= reason ?? new Error(`writer ${this.id} was cancelled`);
    if (this.#state === 'done') return;
    this.#state = 'done';
    await this.#removeAll();
  }

  #assertOpen(): void {
    if (this.#failure) throw this.#failure;
    if (this.#state !== 'open') throw new Error(`writer ${this.id} is finished`);
  }

  async #replay(update: (bytes: Uint8Array) => void): Promise<void> {
    for (const chunk of this.#chunks) await readChunk(this.#bucket, chunk, update);
  }

  async #publish(expected: Digest): Promise<void> {
    const target = this.#bucket.keys.blob(expected);
    const what = `publish ${expected.value}`;
    if ((await this.#bucket.head(target, what))?.size === this.#written) return;
    const chunks = this.#chunks;
    try {
      if (chunks.length === 1) return await copyObject(this.#bucket, chunks[0]!.key, target, chunks[0]!.size, what, chunks[0]!.etag);
      if (this.#written <= this.#bucket.sizes.part) return await putObject(this.#bucket, target, await gather(this.#bucket, chunks), what);
      await composeObject(this.#bucket, target, this.#partSources(), what);
    } catch (error) {
      if (isPreconditionFailed(error instanceof MirrorError ? error.detail : error)) {
        throw new DigestInvalidError(`upload ${this.id} changed in S3 while it was committed; nothing was published`);
      }
      throw error;
    }
  }

  #partSources(): PartSource[] {
    return planParts(this.#chunks, this.#bucket.sizes.minPart).map((part): PartSource =>
      part.kind === 'copy'
        ? { kind: 'copy', key: part.chunk.key, start: 0, end: part.chunk.size - 1, etag: part.chunk.etag }
        : { kind: 'bytes', size: part.size, load: () => gather(this.#bucket, part.chunks) },
    );
  }

  /** Every object of this writer, the ones other processes stored included; failures wait for expireWriters. */
  async #removeAll(): Promise<void> {
    try {
      const keys: string[] = [];
      for await (const object of this.#bucket.listObjects(this.#bucket.keys.upload(this.id))) keys.push(object.Key!);
      await this.#bucket.deleteKeys(keys, `remove upload ${this.id}`);
    } catch {
      // S3 is down or refusing: the chunks stay until expireWriters finds them idle.
    }
  }
}

async function listUpload(bucket: S3Bucket, id: string): Promise<{ marker: boolean; chunks: StoredChunk[] }> {
  let marker = false;
  const chunks: StoredChunk[] = [];
  for await (const object of bucket.listObjects(bucket.keys.upload(id))) {
    const parsed = bucket.keys.parseUploadKey(object.Key ?? '');
    if (parsed?.offset !== undefined) chunks.push({ key: object.Key!, offset: parsed.offset, size: object.Size ?? 0, etag: object.ETag ?? '' });
    else if (parsed) marker = true;
  }
  return { marker, chunks };
}

async function readChunk(bucket: S3Bucket, chunk: StoredChunk, update: (bytes: Uint8Array) => void): Promise<void> {
  const object = await bucket.call(`read ${chunk.key}`, () =>
    bucket.client.send(new GetObjectCommand({ Bucket: bucket.name, Key: chunk.key, IfMatch: chunk.etag || undefined })),
  );
  let read = 0;
  for await (const bytes of object.Body as Readable) {
    update(bytes as Buffer);
    read += (bytes as Buffer).length;
  }
  if (read !== chunk.size) throw new DigestInvalidError(`chunk ${chunk.key} holds ${read} bytes, expected ${chunk.size}`);
}

async function gather(bucket: S3Bucket, chunks: StoredChunk[]): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (const chunk of chunks) await readChunk(bucket, chunk, (bytes) => pieces.push(bytes as Buffer));
  return Buffer.concat(pieces);
}
