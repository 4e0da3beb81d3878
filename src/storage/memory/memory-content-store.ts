/**
 * The content store in process memory, for tests: the same contract as the filesystem store
 * (test/contract/content-store.contract.ts), content sent as streams. Resumable writers live in
 * the store, not in the writer object, so a writer can be continued by id, as upload sessions
 * do across requests. Writers cannot be followed while they grow (no `growing`): readers wait
 * for the commit.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { createDigester, type Digest } from '../../domain/digest.js';
import { BlobUnknownError, DigestInvalidError, SizeInvalidError } from '../../domain/errors.js';
import type { BlobBody, ContentStore, ContentWriter, OpenOptions, StoredContent, WriterOptions } from '../content-store.js';

interface PendingUpload {
  chunks: Buffer[];
  updatedAt: number;
}

export class MemoryContentStore implements ContentStore {
  readonly #content = new Map<string, { digest: Digest; bytes: Buffer; modifiedAt: number }>();
  readonly #uploads = new Map<string, PendingUpload>();

  async stat(digest: Digest): Promise<StoredContent | undefined> {
    const entry = this.#content.get(digest.value);
    return entry && { digest, size: entry.bytes.byteLength };
  }

  async open(digest: Digest, options: OpenOptions = {}): Promise<BlobBody | undefined> {
    const entry = this.#content.get(digest.value);
    if (!entry) return undefined;
    const bytes = options.range ? entry.bytes.subarray(options.range.start, options.range.end + 1) : entry.bytes;
    return { kind: 'stream', size: entry.bytes.byteLength, stream: Readable.from([bytes]) };
  }

  async read(digest: Digest): Promise<Buffer | undefined> {
    return this.#content.get(digest.value)?.bytes;
  }

  async writer(options: WriterOptions = {}): Promise<ContentWriter> {
    if (options.resumeId !== undefined) {
      const upload = this.#uploads.get(options.resumeId);
      if (!upload) throw new BlobUnknownError(`no writer ${JSON.stringify(options.resumeId.slice(0, 64))}`);
      return new MemoryWriter(options.resumeId, upload, this);
    }
    const id = randomUUID();
    const upload: PendingUpload = { chunks: [], updatedAt: Date.now() };
    if (options.resumable) this.#uploads.set(id, upload);
    return new MemoryWriter(id, upload, this);
  }

  async delete(digest: Digest): Promise<void> {
    this.#content.delete(digest.value);
  }

  async *list(): AsyncIterable<StoredContent> {
    for (const entry of [...this.#content.values()]) yield { digest: entry.digest, size: entry.bytes.byteLength, modifiedAt: entry.modifiedAt };
  }

  async expireWriters(before: number): Promise<string[]> {
    const expired = [...this.#uploads].filter(([, upload]) => upload.updatedAt < before).map(([id]) => id);
    for (const id of expired) this.#uploads.delete(id);
    return expired;
  }

  async close(): Promise<void> {}

  /** For MemoryWriter: publishes verified bytes and forgets the upload. */
  publish(id: string, digest: Digest, bytes: Buffer): void {
    this.#content.set(digest.value, { digest, bytes, modifiedAt: Date.now() });
    this.#uploads.delete(id);
  }

  /** For MemoryWriter: forgets the upload. */
  discard(id: string): void {
    this.#uploads.delete(id);
  }
}

class MemoryWriter implements ContentWriter {
  #state: 'writing' | 'committed' | 'failed' = 'writing';
  #failure: Error | undefined;
  #committed: StoredContent | undefined;

  constructor(readonly id: string, private readonly upload: PendingUpload, private readonly store: MemoryContentStore) {}

  get written(): number {
    return this.upload.chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== 'writing') throw this.#failure ?? new Error(`writer ${this.id} has already committed`);
    this.upload.chunks.push(Buffer.from(chunk));
    this.upload.updatedAt = Date.now();
  }

  async commit(expected: Digest, size?: number): Promise<StoredContent> {
    if (this.#state === 'committed' && this.#committed?.digest.value === expected.value) return this.#committed;
    if (this.#state !== 'writing') throw this.#failure ?? new Error(`writer ${this.id} is finished`);
    const bytes = Buffer.concat(this.upload.chunks);
    if (size !== undefined && bytes.byteLength !== size) {
      throw this.#fail(new SizeInvalidError(`${bytes.byteLength} bytes were written for ${expected.value}, not the ${size} announced`));
    }
    const actual = `${expected.algorithm}:${createDigester(expected.algorithm).update(bytes).digest('hex')}`;
    if (actual !== expected.value) throw this.#fail(new DigestInvalidError(`the bytes written for ${expected.value} hash to ${actual}`));
    this.store.publish(this.id, expected, bytes);
    this.#state = 'committed';
    this.#committed = { digest: expected, size: bytes.byteLength };
    return this.#committed;
  }

  async cancel(reason?: Error): Promise<void> {
    this.#fail(reason ?? new Error(`writer ${this.id} was cancelled`));
  }

  #fail(error: Error): Error {
    if (this.#state !== 'writing') return this.#failure ?? error;
    this.#state = 'failed';
    this.#failure = error;
    this.upload.chunks.length = 0;
    this.store.discard(this.id);
    return error;
  }
}
