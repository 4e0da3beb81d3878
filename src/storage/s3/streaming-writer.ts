/**
 * A writer owned by this process (a cache fill): bytes go to a multipart upload under a
 * temporary key while they are hashed; the commit checks digest and size, completes the upload
 * and copies it to the digest key (multipart copy above 5 GiB), then deletes the temporary key.
 * Content smaller than one part never leaves memory until it is verified, and is then put
 * straight under its digest. Memory stays bounded whatever the size: one part being filled plus
 * at most MAX_PARTS_IN_FLIGHT being sent (compare distribution's registry/storage/blobwriter.go).
 *
 * On a mismatch, a cancel or a failure the multipart upload is aborted and the temporary key
 * deleted; what an outage keeps us from removing, expireWriters removes later (it skips the
 * writers this process still owns: LiveWriters).
 */
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { createDigester, type Digest } from '../../domain/digest.js';
import type { ContentWriter } from '../content-store.js';
import { PartBuffer } from './part-buffer.js';
import { copyObject, putObject } from './publish.js';
import type { LiveWriters, S3Bucket } from './s3-bucket.js';
import { toStoreError } from './s3-errors.js';
import { STREAMING_ALGORITHM, verifyDigest } from './verify-digest.js';

const MAX_PARTS_IN_FLIGHT = 2;
/** Parts double in size every this many, so an unannounced size still fits in 10,000 parts. */
const PARTS_PER_SIZE_STEP = 2_000;

type State = 'open' | 'committing' | 'done';

export class StreamingWriter implements ContentWriter {
  readonly #bucket: S3Bucket;
  readonly #tmpKey: string;
  readonly #hash = createDigester(STREAMING_ALGORITHM);
  readonly #basePartSize: number;
  readonly #buffer: PartBuffer;
  readonly #live: LiveWriters;
  readonly #etags: string[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  #writing: Promise<void> = Promise.resolve();
  #uploadId: string | undefined;
  #tmpObjectExists = false;
  #written = 0;
  #state: State = 'open';
  #failure: Error | undefined;

  constructor(bucket: S3Bucket, readonly id: string, live: LiveWriters, sizeHint?: number) {
    this.#bucket = bucket;
    this.#tmpKey = bucket.keys.tmp(id);
    this.#basePartSize = bucket.partSizeFor(sizeHint);
    this.#buffer = new PartBuffer(this.#basePartSize);
    this.#live = live;
    live.add(id);
  }

  get written(): number {
    return this.#written;
  }

  /** Writes are applied in call order, even when a caller does not wait for the previous one. */
  write(chunk: Uint8Array): Promise<void> {
    const next = this.#writing.then(() => this.#append(chunk));
    this.#writing = next.catch(() => {});
    return next;
  }

  async #append(chunk: Uint8Array): Promise<void> {
    this.#assertOpen();
    this.#hash.update(chunk);
    this.#written += chunk.length;
    try {
      await this.#buffer.append(chunk, (part) => this.#sendPart(part));
    } catch (error) {
      // The hash holds bytes S3 may not have: this writer can only be cancelled now.
      this.#failure ??= error as Error;
      throw error;
    }
  }

  async commit(expected: Digest, size?: number): Promise<{ digest: Digest; size: number }> {
    await this.#writing;
    this.#assertOpen();
    this.#state = 'committing';
    try {
      await this.#settleParts();
      await verifyDigest({ size: this.#written, streamingHex: this.#hash.digest('hex'), replay: (update) => this.#replay(update) }, expected, size);
      await this.#publish(expected);
      this.#state = 'done';
      await this.#cleanUp();
      return { digest: expected, size: this.#written };
    } catch (error) {
      this.#failure = error as Error;
      await this.cancel();
      throw error;
    }
  }

  async cancel(reason?: Error): Promise<void> {
    this.#failure ??= reason ?? new Error(`writer ${this.id} was cancelled`);
    this.#state = 'done';
    // A write may be starting the multipart upload right now: abort it only once it has an id.
    await this.#writing;
    await this.#cleanUp();
  }

  #assertOpen(): void {
    if (this.#failure) throw this.#failure;
    if (this.#state !== 'open') throw new Error(`writer ${this.id} is finished`);
  }

  async #sendPart(part: Buffer): Promise<void> {
    const partNumber = this.#etags.length + 1;
    this.#etags.push('');
    this.#buffer.resize(this.#basePartSize * 2 ** Math.floor(partNumber / PARTS_PER_SIZE_STEP));
    const uploadId = await this.#ensureUpload();
    const sending = this.#bucket
      .call(`upload part ${partNumber} of ${this.#tmpKey}`, () =>
        this.#bucket.client.send(new UploadPartCommand({ Bucket: this.#bucket.name, Key: this.#tmpKey, UploadId: uploadId, PartNumber: partNumber, Body: part, ContentLength: part.length })),
      )
      .then((result) => {
        this.#etags[partNumber - 1] = result.ETag ?? '';
        this.#buffer.recycle(part);
      })
      .catch((error: Error) => {
        this.#failure ??= error;
      })
      .finally(() => this.#inFlight.delete(sending));
    this.#inFlight.add(sending);
    while (this.#inFlight.size >= MAX_PARTS_IN_FLIGHT) await Promise.race(this.#inFlight);
    if (this.#failure) throw this.#failure;
  }

  async #ensureUpload(): Promise<string> {
    if (this.#uploadId) return this.#uploadId;
    const created = await this.#bucket.call(`start upload ${this.#tmpKey}`, () =>
      this.#bucket.client.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket.name, Key: this.#tmpKey })),
    );
    if (!created.UploadId) throw toStoreError(new Error('CreateMultipartUpload answered no UploadId'), `start upload ${this.#tmpKey}`);
    this.#uploadId = created.UploadId;
    this.#live.add(this.#uploadId);
    return this.#uploadId;
  }

  async #settleParts(): Promise<void> {
    await Promise.all(this.#inFlight);
    if (this.#failure) throw this.#failure;
  }

  /** Content of one part or less is still in memory: put it under its digest in one request. */
  async #publish(expected: Digest): Promise<void> {
    const target = this.#bucket.keys.blob(expected);
    if (!this.#uploadId) {
      await putObject(this.#bucket, target, this.#buffer.take(), `publish ${expected.value}`);
      return;
    }
    await this.#completeTmpObject();
    // Committing a digest already there is not an error, and costs no copy.
    if ((await this.#bucket.head(target, `stat ${expected.value}`))?.size === this.#written) return;
    await copyObject(this.#bucket, this.#tmpKey, target, this.#written, `publish ${expected.value}`);
  }

  async #completeTmpObject(): Promise<void> {
    if (this.#tmpObjectExists) return;
    const last = this.#buffer.take();
    if (last.length > 0) await this.#sendPart(last);
    await this.#settleParts();
    const uploadId = this.#uploadId!;
    await this.#bucket.call(`complete ${this.#tmpKey}`, () =>
      this.#bucket.client.send(new CompleteMultipartUploadCommand({
        Bucket: this.#bucket.name,
        Key: this.#tmpKey,
        UploadId: uploadId,
        MultipartUpload: { Parts: this.#etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
      })),
    );
    this.#tmpObjectExists = true;
  }

  /** Every byte again, for a digest algorithm other than the streaming one. */
  async #replay(update: (bytes: Uint8Array) => void): Promise<void> {
    if (!this.#uploadId) return update(this.#buffer.peek());
    await this.#completeTmpObject();
    const object = await this.#bucket.call(`read ${this.#tmpKey}`, () =>
      this.#bucket.client.send(new GetObjectCommand({ Bucket: this.#bucket.name, Key: this.#tmpKey })),
    );
    for await (const chunk of object.Body as Readable) update(chunk as Buffer);
  }

  /** Aborts the upload and deletes the temporary key; failures are left to expireWriters. */
  async #cleanUp(): Promise<void> {
    await Promise.allSettled(this.#inFlight);
    const uploadId = this.#uploadId;
    this.#buffer.take();
    try {
      if (uploadId && !this.#tmpObjectExists) await this.#bucket.abortUpload(this.#tmpKey, uploadId, `abort ${this.#tmpKey}`);
      if (this.#tmpObjectExists) await this.#bucket.deleteKeys([this.#tmpKey], `delete ${this.#tmpKey}`);
      this.#uploadId = undefined;
      this.#tmpObjectExists = false;
    } catch {
      // S3 is down or refusing: the upload stays until expireWriters finds it idle.
    } finally {
      if (uploadId) this.#live.delete(uploadId);
      this.#live.delete(this.id);
    }
  }
}
