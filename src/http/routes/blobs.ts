/**
 * GET/HEAD /v2/<name>/blobs/<digest> (distribution-spec "Pulling blobs"), with single byte
 * ranges and If-None-Match (entity-tags.ts). HEAD is answered from what is known (the blob index,
 * a running download, or an upstream HEAD) and never reads or pulls the blob.
 */
import type { Context } from 'hono';
import { parseRangeHeader, type RangeRequest } from '../../domain/byte-range.js';
import { parseDigest, type Digest } from '../../domain/digest.js';
import type { RepositoryTarget } from '../../domain/target.js';
import type { RegistryService } from '../../pull-through/registry-service.js';
import { ACCEL_REQUEST_HEADER } from '../accel-redirect.js';
import { entityTagOf, ifNoneMatchNames, notModified } from '../entity-tags.js';
import { blobRequestOptions, requestOptions } from '../request-options.js';
import type { ReadHandler } from '../route-table.js';
import { sendBlobAnswer } from '../send-blob-body.js';
import { SendWatchdog } from '../send-watchdog.js';

export const DEFAULT_SEND_TIMEOUT_MS = 60_000;

export interface BlobsRouteOptions {
  /** Cache hits go out as X-Accel-Redirect to this nginx internal location (http/accel-redirect.ts). */
  accelRedirectPrefix?: string;
  /** Files are sent with sendfile(2) when the addon is available (http/send-file.ts); default true. */
  sendfile?: boolean;
  /** Config `listen.sendTimeoutSeconds`, in ms: clients that stop reading are cut off (http/send-watchdog.ts). */
  sendTimeoutMs?: number;
}

export function blobRoutes({ accelRedirectPrefix, sendfile = true, sendTimeoutMs = DEFAULT_SEND_TIMEOUT_MS }: BlobsRouteOptions = {}): { get: ReadHandler; head: ReadHandler } {
  const watchdog = new SendWatchdog(sendTimeoutMs);
  return {
    async head<T extends RepositoryTarget>(c: Context, registry: RegistryService<T>, target: T, digestText: string): Promise<Response> {
      const digest = parseDigest(digestText);
      const size = await registry.blobSize(target, digest, requestOptions(c));
      if (ifNoneMatchNames(c, etagOf(digest))) return notModified(digest.value);
      return new Response(null, { status: 200, headers: { ...blobHeaders(digest), 'Content-Length': String(size) } });
    },
    async get<T extends RepositoryTarget>(c: Context, registry: RegistryService<T>, target: T, digestText: string): Promise<Response> {
      const digest = parseDigest(digestText);
      // The client holds these bytes: it learns they still exist here (and it may read them), as a HEAD would.
      if (ifNoneMatchNames(c, etagOf(digest))) {
        await registry.blobSize(target, digest, requestOptions(c));
        return notModified(digest.value);
      }
      const answer = await registry.blob(target, digest, requestedRange(c, digest), blobRequestOptions(c));
      c.set('cacheResult', answer.origin);
      const fromNginx = accelRedirectPrefix !== undefined && c.req.header(ACCEL_REQUEST_HEADER) === accelRedirectPrefix;
      return sendBlobAnswer(c, answer, blobHeaders(digest), { sendfile, watchdog, accelPrefix: fromNginx ? accelRedirectPrefix : undefined });
    },
  };
}

/**
 * The Range of a GET, unless If-Range names another representation than this blob's ETag: then
 * the whole blob (RFC 9110 section 13.1.5; a weak tag or a date never matches, as no
 * Last-Modified is sent), so a client resuming a different file does not splice these bytes in.
 */
function requestedRange(c: Context, digest: Digest): RangeRequest | undefined {
  const ifRange = c.req.header('if-range');
  if (ifRange !== undefined && ifRange.trim() !== etagOf(digest)) return undefined;
  return parseRangeHeader(c.req.header('range'));
}

const etagOf = (digest: Digest) => entityTagOf(digest.value);

/** The headers of every blob answer (the lane's too: warm-blob-lane.ts). */
export function blobHeaders(digest: Digest): Record<string, string> {
  return {
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest.value,
    'Accept-Ranges': 'bytes',
    ETag: etagOf(digest),
  };
}
