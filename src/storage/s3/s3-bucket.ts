/**
 * The bucket as the store and its writers use it: one S3 client, the key layout, the part sizes,
 * and every call wrapped so a failure surfaces as a MirrorError (s3-errors.ts).
 */
import {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type _Object,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { S3Keys } from './s3-keys.js';
import { isNotFound, isNoSuchUpload, toStoreError } from './s3-errors.js';

export interface PartSizes {
  /** S3's smallest part except the last: 5 MiB. */
  minPart: number;
  /** Bytes a writer buffers per part (and per persisted chunk); default 8 MiB. */
  part: number;
  /** Largest object one CopyObject may copy: 5 GiB in S3; above it, a multipart copy. */
  maxCopyObject: number;
  /** Part size of a multipart copy; default 1 GiB (S3 allows up to 5 GiB). */
  copyPart: number;
}

const MIB = 2 ** 20;
const GIB = 2 ** 30;
export const DEFAULT_PART_SIZES: PartSizes = { minPart: 5 * MIB, part: 8 * MIB, maxCopyObject: 5 * GIB, copyPart: GIB };

/**
 * Multipart upload ids and resumable writer ids this process is still writing: expireWriters
 * never removes them, however idle they look (a slow upstream is not an abandoned fill).
 */
export type LiveWriters = Set<string>;

/** S3 allows 10,000 parts per upload; a little headroom for the last, short ones. */
const MAX_PARTS = 9_000;

export class S3Bucket {
  constructor(
    readonly client: S3Client,
    readonly name: string,
    readonly keys: S3Keys,
    readonly sizes: PartSizes,
  ) {}

  /** Runs one S3 call, turning its failure into a MirrorError that names `what`. */
  async call<T>(what: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw toStoreError(error, what);
    }
  }

  /** Part size for a writer: the default, or larger when `sizeHint` would need too many parts. */
  partSizeFor(sizeHint?: number): number {
    if (!sizeHint || sizeHint <= 0) return this.sizes.part;
    return Math.max(this.sizes.part, Math.ceil(sizeHint / MAX_PARTS / MIB) * MIB);
  }

  async head(key: string, what: string): Promise<{ size: number; etag?: string } | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key }));
      return { size: head.ContentLength ?? 0, etag: head.ETag };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw toStoreError(error, what);
    }
  }

  /** Every object under `prefix`, page by page (ListObjectsV2). */
  async *listObjects(prefix: string, pageSize = 1000): AsyncGenerator<_Object> {
    let token: string | undefined;
    do {
      const page = await this.call(`list ${prefix}`, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.name, Prefix: prefix, MaxKeys: pageSize, ContinuationToken: token })),
      );
      for (const object of page.Contents ?? []) yield object;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Deletes keys, 1,000 per request (the DeleteObjects limit); absent keys are not an error. */
  async deleteKeys(keys: string[], what: string): Promise<void> {
    for (let start = 0; start < keys.length; start += 1000) {
      const batch = keys.slice(start, start + 1000);
      const result = await this.call(what, () =>
        this.client.send(new DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true } })),
      );
      const failed = (result.Errors ?? []).filter((error) => error.Code !== 'NoSuchKey');
      if (failed.length > 0) throw toStoreError(Object.assign(new Error(failed[0]!.Message ?? ''), { name: failed[0]!.Code }), `${what}: ${failed[0]!.Key}`);
    }
  }

  /** Aborts a multipart upload; one already gone (completed or aborted) is fine. */
  async abortUpload(key: string, uploadId: string, what: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.name, Key: key, UploadId: uploadId }));
    } catch (error) {
      if (!isNoSuchUpload(error)) throw toStoreError(error, what);
    }
  }
}
