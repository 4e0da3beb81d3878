/**
 * Publishing verified bytes under their digest key. Every path makes the key appear at once, in
 * one request S3 applies atomically (PutObject, CopyObject, CompleteMultipartUpload), and never
 * before the writer checked the digest. Conditional writes are not used: Ceph RGW 16.2 ignores
 * If-None-Match on multipart completion and copy, and two writers publishing the same verified
 * digest write the same bytes anyway.
 */
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import pLimit from 'p-limit';
import type { S3Bucket } from './s3-bucket.js';
import { toStoreError } from './s3-errors.js';

/** One part of a composed object: a range of an existing object, or bytes loaded when sent. */
export type PartSource =
  | { kind: 'copy'; key: string; start: number; end: number; /** Copy only if the source still has this ETag. */ etag?: string }
  | { kind: 'bytes'; size: number; load: () => Promise<Buffer> };

const PART_CONCURRENCY = 4;

export async function putObject(bucket: S3Bucket, key: string, body: Buffer, what: string): Promise<void> {
  await bucket.call(what, () => bucket.client.send(new PutObjectCommand({ Bucket: bucket.name, Key: key, Body: body, ContentLength: body.length })));
}

/**
 * Copies `source` (of `size` bytes) to `target`: CopyObject up to its 5 GiB limit, else part by
 * part. With `etag`, only while the source still has it.
 */
export async function copyObject(bucket: S3Bucket, source: string, target: string, size: number, what: string, etag?: string): Promise<void> {
  if (size <= bucket.sizes.maxCopyObject) {
    await bucket.call(what, () =>
      bucket.client.send(new CopyObjectCommand({ Bucket: bucket.name, Key: target, CopySource: copySource(bucket, source), ...(etag ? { CopySourceIfMatch: etag } : {}) })),
    );
    return;
  }
  const parts: PartSource[] = [];
  for (let start = 0; start < size; start += bucket.sizes.copyPart) {
    parts.push({ kind: 'copy', key: source, start, end: Math.min(size, start + bucket.sizes.copyPart) - 1, ...(etag ? { etag } : {}) });
  }
  await composeObject(bucket, target, parts, what);
}

/**
 * Builds `target` from `parts` in one multipart upload; on any failure the upload is aborted,
 * so nothing appears under `target` and no parts are left behind.
 */
export async function composeObject(bucket: S3Bucket, target: string, parts: PartSource[], what: string): Promise<void> {
  const { UploadId: uploadId } = await bucket.call(what, () =>
    bucket.client.send(new CreateMultipartUploadCommand({ Bucket: bucket.name, Key: target })),
  );
  if (!uploadId) throw toStoreError(new Error('CreateMultipartUpload answered no UploadId'), what);
  try {
    const limit = pLimit(PART_CONCURRENCY);
    const etags = await Promise.all(parts.map((part, index) => limit(() => sendPart(bucket, target, uploadId, index + 1, part, what))));
    await bucket.call(what, () =>
      bucket.client.send(new CompleteMultipartUploadCommand({
        Bucket: bucket.name,
        Key: target,
        UploadId: uploadId,
        MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
      })),
    );
  } catch (error) {
    await bucket.abortUpload(target, uploadId, what).catch(() => {
      // S3 is failing already: the error that matters is the first one; expireWriters retries.
    });
    throw error;
  }
}

async function sendPart(bucket: S3Bucket, key: string, uploadId: string, partNumber: number, part: PartSource, what: string): Promise<string> {
  const common = { Bucket: bucket.name, Key: key, UploadId: uploadId, PartNumber: partNumber };
  if (part.kind === 'bytes') {
    const body = await part.load();
    const result = await bucket.call(what, () => bucket.client.send(new UploadPartCommand({ ...common, Body: body, ContentLength: body.length })));
    return requireEtag(result.ETag, partNumber, what);
  }
  const result = await bucket.call(what, () =>
    bucket.client.send(new UploadPartCopyCommand({
      ...common,
      CopySource: copySource(bucket, part.key),
      CopySourceRange: `bytes=${part.start}-${part.end}`,
      ...(part.etag ? { CopySourceIfMatch: part.etag } : {}),
    })),
  );
  return requireEtag(result.CopyPartResult?.ETag, partNumber, what);
}

function requireEtag(etag: string | undefined, partNumber: number, what: string): string {
  if (!etag) throw toStoreError(new Error(`part ${partNumber} was stored without an ETag`), what);
  return etag;
}

/** `bucket/key` with the key URL-encoded, segment by segment (x-amz-copy-source). */
function copySource(bucket: S3Bucket, key: string): string {
  return `${bucket.name}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
