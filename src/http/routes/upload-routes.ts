/**
 * Blob uploads to hosted repositories (distribution-spec "Push"):
 *   POST   /v2/<name>/blobs/uploads/                 202, Location of a new session
 *   POST   /v2/<name>/blobs/uploads/?digest=<d>      201, the whole blob in one request
 *   POST   /v2/<name>/blobs/uploads/?mount=<d>&from= 201 mounted, or 202 and a session
 *   PATCH  <location>                                202 with Range: a chunk, with Content-Range
 *                                                    (in order, else 416) or without (streamed,
 *                                                    chunked encoding, as dockerd and podman send)
 *   PUT    <location>?digest=<d>                     201: the last chunk if any, whole digest verified
 *   GET    <location>                                204 with Range
 *   DELETE <location>                                204
 * Locations are absolute, built from what the client reached (http/external-base.ts); clients
 * keep their query and append `digest=` (checklist X-03).
 */
import type { Context } from 'hono';
import { parseDigest, type Digest } from '../../domain/digest.js';
import { DigestInvalidError } from '../../domain/errors.js';
import type { HostedTarget } from '../../domain/target.js';
import type { BlobPushes } from '../../hosted/blob-pushes.js';
import type { PushRequest } from '../../hosted/push-events.js';
import type { UploadBody } from '../../hosted/upload-sessions.js';
import type { UploadSession } from '../../metadata/metadata-store.js';
import { contentLength, contentRange, requestBody } from '../request-body.js';

export interface UploadRouteOptions {
  blobs: BlobPushes;
  /** The request as events report it, and the base URL the client reached. */
  pushRequest(c: Context): PushRequest;
}

type Handler = (c: Context, registry: unknown, target: HostedTarget, reference: string) => Promise<Response>;

export function uploadRoutes({ blobs, pushRequest }: UploadRouteOptions): Record<'start' | 'status' | 'append' | 'finish' | 'cancel', Handler> {
  return {
    async start(c, _registry, target) {
      const by = pushRequest(c);
      const digest = c.req.query('digest');
      if (digest !== undefined) return blobCreated(by, target, (await blobs.putBlob(target, parseDigest(digest), uploadBody(c), by)).digest);
      const mount = c.req.query('mount');
      const from = c.req.query('from');
      if (mount !== undefined && from !== undefined) {
        const outcome = await blobs.mount(target, parseDigest(mount), from, by);
        if (outcome.mounted) return blobCreated(by, target, parseDigest(mount));
        return sessionAnswer(202, by, target, outcome.session);
      }
      return sessionAnswer(202, by, target, await blobs.startUpload(target));
    },
    async status(c, _registry, target, id) {
      return sessionAnswer(204, pushRequest(c), target, await blobs.uploadStatus(target, id));
    },
    async append(c, _registry, target, id) {
      return sessionAnswer(202, pushRequest(c), target, await blobs.appendUpload(target, id, uploadBody(c)));
    },
    async finish(c, _registry, target, id) {
      const digest = closingDigest(c);
      const by = pushRequest(c);
      return blobCreated(by, target, (await blobs.finishUpload(target, id, digest, uploadBody(c), by)).digest);
    },
    async cancel(c, _registry, target, id) {
      await blobs.cancelUpload(target, id);
      return new Response(null, { status: 204, headers: { 'Content-Length': '0' } });
    },
  };
}

function uploadBody(c: Context): UploadBody {
  const body: UploadBody = { stream: requestBody(c) };
  const range = contentRange(c);
  const length = contentLength(c);
  if (range) body.range = range;
  if (length !== undefined) body.length = length;
  return body;
}

/** The closing PUT must name the whole blob's digest (distribution-spec "Push"; checklist P-19). */
function closingDigest(c: Context): Digest {
  const values = c.req.queries('digest') ?? [];
  if (values.length !== 1) throw new DigestInvalidError(values.length === 0 ? 'the closing PUT needs ?digest=<digest of the whole blob>' : 'digest given more than once');
  return parseDigest(values[0]!);
}

function uploadLocation(by: PushRequest, target: HostedTarget, id: string): string {
  return `${by.externalBase}/v2/${target.repository}/blobs/uploads/${id}`;
}

/** 202 (POST, PATCH) or 204 (GET): where the session is and how much it holds (`0-0` when nothing yet, as distribution says it). */
function sessionAnswer(status: 202 | 204, by: PushRequest, target: HostedTarget, session: UploadSession): Response {
  const headers = {
    Location: uploadLocation(by, target, session.id),
    Range: `0-${Math.max(0, session.offset - 1)}`,
    'Docker-Upload-UUID': session.id,
    'Content-Length': '0',
  };
  return new Response(null, { status, headers });
}

function blobCreated(by: PushRequest, target: HostedTarget, digest: Digest): Response {
  const headers = { Location: `${by.externalBase}/v2/${target.repository}/blobs/${digest.value}`, 'Docker-Content-Digest': digest.value, 'Content-Length': '0' };
  return new Response(null, { status: 201, headers });
}
