/**
 * Removing what writers left behind. S3 cannot tell whether the replica that started a
 * multipart upload is alive, so idleness decides: an upload whose newest part (or, with no part,
 * its start) is older than the cutoff is abandoned, unless this process still owns it. The
 * cutoff is the caller's (upload-session expiry, hours), far longer than any pause of a live fill.
 */
import { ListMultipartUploadsCommand, ListPartsCommand, type MultipartUpload } from '@aws-sdk/client-s3';
import type { LiveWriters, S3Bucket } from './s3-bucket.js';

/** Resumable writers whose newest object (marker or chunk) is older than `before`: deleted, ids returned. */
export async function expireResumableWriters(bucket: S3Bucket, before: number): Promise<string[]> {
  const writers = new Map<string, { keys: string[]; lastWrite: number }>();
  for await (const object of bucket.listObjects(bucket.keys.uploadsPrefix)) {
    const parsed = bucket.keys.parseUploadKey(object.Key ?? '');
    if (!parsed) continue;
    const writer = writers.get(parsed.writerId) ?? { keys: [], lastWrite: 0 };
    writer.keys.push(object.Key!);
    writer.lastWrite = Math.max(writer.lastWrite, object.LastModified?.getTime() ?? 0);
    writers.set(parsed.writerId, writer);
  }
  const expired: string[] = [];
  for (const [id, writer] of writers) {
    if (writer.lastWrite >= before) continue;
    await bucket.deleteKeys(writer.keys, `expire upload ${id}`);
    expired.push(id);
  }
  return expired;
}

/**
 * Multipart uploads under the store's prefix (cache fills under tmp/, commits composing under
 * blobs/) idle since `before` are aborted; completed temporary objects that old are deleted.
 */
export async function expireAbandonedFills(bucket: S3Bucket, before: number, live: LiveWriters): Promise<void> {
  for await (const upload of listUploads(bucket)) {
    if (!upload.Key || !upload.UploadId || live.has(upload.UploadId)) continue;
    if (!upload.Key.startsWith(bucket.keys.tmpPrefix) && !upload.Key.startsWith(bucket.keys.blobsPrefix)) continue;
    if ((upload.Initiated?.getTime() ?? 0) >= before || (await lastPartWritten(bucket, upload)) >= before) continue;
    await bucket.abortUpload(upload.Key, upload.UploadId, `expire upload ${upload.Key}`);
  }
  const stale: string[] = [];
  for await (const object of bucket.listObjects(bucket.keys.tmpPrefix)) {
    const id = bucket.keys.tmpWriterId(object.Key ?? '');
    if (id && !live.has(id) && (object.LastModified?.getTime() ?? 0) < before) stale.push(object.Key!);
  }
  await bucket.deleteKeys(stale, 'expire temporary objects');
}

async function* listUploads(bucket: S3Bucket): AsyncGenerator<MultipartUpload> {
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  do {
    const page = await bucket.call('list multipart uploads', () =>
      bucket.client.send(new ListMultipartUploadsCommand({ Bucket: bucket.name, Prefix: bucket.keys.prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker })),
    );
    yield* page.Uploads ?? [];
    keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
    uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
  } while (keyMarker);
}

/** When the newest part of `upload` was stored (0 when it has none). */
async function lastPartWritten(bucket: S3Bucket, upload: MultipartUpload): Promise<number> {
  let newest = 0;
  let marker: string | undefined;
  do {
    const page = await bucket.call(`list parts of ${upload.Key}`, () =>
      bucket.client.send(new ListPartsCommand({ Bucket: bucket.name, Key: upload.Key, UploadId: upload.UploadId, PartNumberMarker: marker })),
    );
    for (const part of page.Parts ?? []) newest = Math.max(newest, part.LastModified?.getTime() ?? 0);
    marker = page.IsTruncated ? page.NextPartNumberMarker : undefined;
  } while (marker);
  return newest;
}
