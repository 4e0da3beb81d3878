/**
 * The content store in an S3 bucket (AWS S3, MinIO, Ceph RGW, R2...), for replicas that share
 * their bytes (issue 15, DESIGN.md "Replicas"). Content is keyed by digest only (s3-keys.ts);
 * cache fills stream through a multipart upload to a temporary key (streaming-writer.ts); upload
 * sessions, which any replica may continue, keep their chunks as readable objects
 * (chunked-writer.ts). Reads are ranged GETs, or with `redirect` a presigned URL the client
 * fetches itself. Every S3 failure surfaces as UpstreamUnavailableError (503), promptly: the
 * client's timeouts are in s3-client.ts.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadBucketCommand, type GetObjectCommandOutput } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Digest } from '../../domain/digest.js';
import { RangeNotSatisfiableError } from '../../domain/errors.js';
import type { BlobBody, ContentStore, ContentWriter, OpenOptions, StoredContent, WriterOptions } from '../content-store.js';
import { ChunkedWriter } from './chunked-writer.js';
import { expireAbandonedFills, expireResumableWriters } from './expire-writers.js';
import { DEFAULT_PART_SIZES, type LiveWriters, type PartSizes, S3Bucket } from './s3-bucket.js';
import { createS3Client, type S3ClientTuning } from './s3-client.js';
import { resolveS3StorageConfig, type ResolvedS3StorageConfig, type S3StorageConfig } from './s3-config.js';
import { isInvalidRange, isNotFound, toStoreError } from './s3-errors.js';
import { checkWriterId, S3Keys } from './s3-keys.js';
import { StreamingWriter } from './streaming-writer.js';

export interface S3ContentStoreOptions extends S3ClientTuning {
  /** Part sizes; tests shrink them to reach the multipart copy without 5 GiB of data. */
  sizes?: Partial<PartSizes>;
  /** Lifetime of presigned redirect URLs; default 300 s (issue 15: "short expiry"). */
  redirectExpiresSeconds?: number;
  /** Keys per ListObjectsV2 page; default 1000 (S3's maximum). */
  listPageSize?: number;
}

export class S3ContentStore implements ContentStore {
  readonly config: ResolvedS3StorageConfig;
  readonly #bucket: S3Bucket;
  readonly #live: LiveWriters = new Set();
  readonly #redirectExpiresSeconds: number;
  readonly #listPageSize: number;

  constructor(config: S3StorageConfig, options: S3ContentStoreOptions = {}) {
    this.config = resolveS3StorageConfig(config);
    const client = createS3Client(this.config, options);
    this.#bucket = new S3Bucket(client, this.config.bucket, new S3Keys(this.config.prefix), { ...DEFAULT_PART_SIZES, ...options.sizes });
    this.#redirectExpiresSeconds = options.redirectExpiresSeconds ?? 300;
    this.#listPageSize = options.listPageSize ?? 1000;
  }

  async stat(digest: Digest): Promise<StoredContent | undefined> {
    const head = await this.#bucket.head(this.#bucket.keys.blob(digest), `stat ${digest.value}`);
    return head && { digest, size: head.size };
  }

  async open(digest: Digest, options: OpenOptions = {}): Promise<BlobBody | undefined> {
    if (options.allowRedirect && this.config.redirect) return this.#redirect(digest, options.knownSize);
    const range = options.range;
    let object: GetObjectCommandOutput;
    try {
      object = await this.#bucket.client.send(new GetObjectCommand({
        Bucket: this.#bucket.name,
        Key: this.#bucket.keys.blob(digest),
        ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
      }));
    } catch (error) {
      if (isNotFound(error)) return undefined;
      if (isInvalidRange(error)) throw new RangeNotSatisfiableError((await this.stat(digest))?.size ?? 0);
      throw toStoreError(error, `open ${digest.value}`);
    }
    // `size` is the whole content's (as for files); the stream holds only the range asked for.
    return { kind: 'stream', size: totalSize(object), stream: object.Body as Readable };
  }

  /**
   * A presigned GET (Signature Version 4 in the query string) the client follows itself; it never
   * carries the client's credentials. With `knownSize` (the blob index) no request is made at all.
   */
  async #redirect(digest: Digest, knownSize: number | undefined): Promise<BlobBody | undefined> {
    const found = knownSize === undefined ? await this.stat(digest) : { size: knownSize };
    if (!found) return undefined;
    const command = new GetObjectCommand({ Bucket: this.#bucket.name, Key: this.#bucket.keys.blob(digest) });
    const url = await this.#bucket.call(`presign ${digest.value}`, () => getSignedUrl(this.#bucket.client, command, { expiresIn: this.#redirectExpiresSeconds }));
    return { kind: 'redirect', size: found.size, url };
  }

  async read(digest: Digest): Promise<Buffer | undefined> {
    const body = await this.open(digest);
    if (!body || body.kind !== 'stream') return undefined;
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of body.stream) chunks.push(chunk as Buffer);
    } catch (error) {
      throw toStoreError(error, `read ${digest.value}`);
    }
    return Buffer.concat(chunks);
  }

  async writer(options: WriterOptions = {}): Promise<ContentWriter> {
    if (options.resumeId !== undefined) return ChunkedWriter.resume(this.#bucket, checkWriterId(options.resumeId));
    if (options.resumable) return ChunkedWriter.create(this.#bucket, randomUUID());
    return new StreamingWriter(this.#bucket, randomUUID(), this.#live, options.sizeHint);
  }

  async delete(digest: Digest): Promise<void> {
    await this.#bucket.deleteKeys([this.#bucket.keys.blob(digest)], `delete ${digest.value}`);
  }

  async *list(): AsyncIterable<StoredContent> {
    for await (const object of this.#bucket.listObjects(this.#bucket.keys.blobsPrefix, this.#listPageSize)) {
      const digest = this.#bucket.keys.digestOf(object.Key ?? '');
      if (!digest) continue;
      const entry = { digest, size: object.Size ?? 0, modifiedAt: object.LastModified?.getTime() };
      yield entry;
    }
  }

  /**
   * Removes resumable writers idle since `before` and returns their ids. Also aborts multipart
   * uploads and deletes temporary keys idle since then that no writer of this process owns: the
   * leftovers of a replica that died mid-fill (or of a cleanup S3 refused).
   */
  async expireWriters(before: number): Promise<string[]> {
    const expired = await expireResumableWriters(this.#bucket, before);
    await expireAbandonedFills(this.#bucket, before, this.#live);
    return expired;
  }

  /** Resolves when the bucket answers (readiness: /readyz reports S3 down). */
  async ping(): Promise<void> {
    await this.#bucket.call('head bucket', () => this.#bucket.client.send(new HeadBucketCommand({ Bucket: this.#bucket.name })));
  }

  async close(): Promise<void> {
    this.#bucket.client.destroy();
  }
}

/** The whole content's size: from Content-Range ("bytes 0-99/1234") when ranged. */
function totalSize(object: GetObjectCommandOutput): number {
  const total = /\/(\d+)$/.exec(object.ContentRange ?? '')?.[1];
  return total !== undefined ? Number(total) : (object.ContentLength ?? 0);
}
