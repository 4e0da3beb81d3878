/**
 * GET/HEAD /v2/<name>/blobs/<digest> (distribution-spec "Pulling blobs"), with single byte
 * ranges. HEAD is answered from what is known (cache stat, a running download, or an upstream
 * HEAD) and never reads or pulls the blob.
 */
import type { Context } from 'hono';
import { parseDigest } from '../../domain/digest.js';
import type { Puller } from '../../pull-through/puller.js';
import type { RepositoryTarget } from '../../upstream/upstream-router.js';
import { ACCEL_REQUEST_HEADER, accelRedirect } from '../accel-redirect.js';
import { parseByteRange } from '../byte-range.js';
import { sendFile, sendGrowingFile, sendStream } from '../send-stream.js';

export interface BlobsRouteOptions {
  /** Cache hits go out as X-Accel-Redirect to this nginx internal location (http/accel-redirect.ts). */
  accelRedirectPrefix?: string;
  /** Cache hits are sent with sendfile(2) when the addon is available (http/send-file.ts); default true. */
  sendfile?: boolean;
}

export function blobsRoute(puller: Puller, { accelRedirectPrefix, sendfile = true }: BlobsRouteOptions = {}) {
  return async function blobs(c: Context, target: RepositoryTarget, digestText: string): Promise<Response> {
    const digest = parseDigest(digestText);
    const headers: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      'Docker-Content-Digest': digest.value,
      'Accept-Ranges': 'bytes',
      ETag: `"${digest.value}"`,
    };
    if (c.req.method === 'HEAD') {
      const size = await puller.blobSize(target, digest);
      return new Response(null, { status: 200, headers: { ...headers, 'Content-Length': String(size) } });
    }
    const blob = await puller.blob(target, digest);
    c.set('cacheResult', blob.origin);
    if (accelRedirectPrefix && blob.pathUnderBlobsDir && c.req.header(ACCEL_REQUEST_HEADER) === accelRedirectPrefix) {
      // nginx applies the Range header itself to the file it serves.
      return accelRedirect(c, accelRedirectPrefix, blob.pathUnderBlobsDir, { ...headers, 'Content-Length': String(blob.size) }, blob.release);
    }
    let range;
    try {
      range = parseByteRange(c.req.header('range'), blob.size);
    } catch (error) {
      blob.release();
      throw error;
    }
    const start = range?.start ?? 0;
    const end = range?.end ?? blob.size - 1;
    headers['Content-Length'] = String(end - start + 1);
    if (range) headers['Content-Range'] = `bytes ${start}-${end}/${blob.size}`;
    if (blob.size === 0) {
      blob.release();
      return new Response(null, { status: 200, headers });
    }
    const status = range ? 206 : 200;
    const stream = () => blob.open(start, end);
    if (blob.path) return sendFile(c, status, headers, { path: blob.path, start, end, done: blob.release, sendfile }, stream);
    if (blob.growing) return sendGrowingFile(c, status, headers, { file: blob.growing, name: `download of ${digest.value}`, start, end, done: blob.release, sendfile }, stream);
    return sendStream(c, status, headers, stream());
  };
}
