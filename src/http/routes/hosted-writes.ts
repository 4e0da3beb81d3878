/**
 * Manifest pushes and deletions of hosted repositories (distribution-spec "Pushing Manifests",
 * "Content Management"):
 *   PUT    /v2/<name>/manifests/<tag or digest>   201 with Location, Docker-Content-Digest and,
 *                                                 for a manifest with a subject, OCI-Subject
 *   DELETE /v2/<name>/manifests/<tag or digest>   202
 *   DELETE /v2/<name>/blobs/<digest>              202
 * A manifest body over 4 MiB is refused with 413 before it is read whole.
 */
import type { Context } from 'hono';
import { parseDigest } from '../../domain/digest.js';
import { ManifestTooLargeError } from '../../domain/manifest.js';
import { MAX_MANIFEST_BYTES } from '../../domain/media-types.js';
import type { HostedTarget } from '../../domain/target.js';
import type { BlobPushes } from '../../hosted/blob-pushes.js';
import type { ManifestPushes } from '../../hosted/manifest-pushes.js';
import type { PushRequest } from '../../hosted/push-events.js';
import { readSmallBody } from '../request-body.js';

export interface HostedWriteOptions {
  manifests: ManifestPushes;
  blobs: BlobPushes;
  pushRequest(c: Context): PushRequest;
}

type Handler = (c: Context, registry: unknown, target: HostedTarget, reference: string) => Promise<Response>;

const ACCEPTED = (headers: Record<string, string> = {}) => new Response(null, { status: 202, headers: { ...headers, 'Content-Length': '0' } });

export function hostedWriteRoutes({ manifests, blobs, pushRequest }: HostedWriteOptions): Record<'putManifest' | 'deleteManifest' | 'deleteBlob', Handler> {
  return {
    async putManifest(c, _registry, target, reference) {
      const bytes = await readSmallBody(c, MAX_MANIFEST_BYTES, (size) => new ManifestTooLargeError(size));
      const by = pushRequest(c);
      const pushed = await manifests.put(target, reference, bytes, c.req.header('content-type'), by);
      const headers: Record<string, string> = {
        Location: `${by.externalBase}/v2/${target.repository}/manifests/${pushed.digest}`,
        'Docker-Content-Digest': pushed.digest,
        'Content-Length': '0',
      };
      // distribution-spec "Pushing Manifests with Subject": the registry processed the subject.
      if (pushed.subject !== undefined) headers['OCI-Subject'] = pushed.subject;
      return new Response(null, { status: 201, headers });
    },
    async deleteManifest(c, _registry, target, reference) {
      await manifests.delete(target, reference, pushRequest(c));
      return ACCEPTED();
    },
    async deleteBlob(c, _registry, target, digest) {
      await blobs.deleteBlob(target, parseDigest(digest), pushRequest(c));
      return ACCEPTED();
    },
  };
}
