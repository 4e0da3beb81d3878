/**
 * The route table of hosted repositories (route-table.ts): the reads proxied repositories have,
 * served from local storage only (hosted/hosted-registry.ts), plus uploads, manifest pushes and
 * deletions. Every method missing here is a 405 with the right Allow header.
 */
import type { Context } from 'hono';
import type { HostedTarget } from '../../domain/target.js';
import type { BlobPushes } from '../../hosted/blob-pushes.js';
import type { ManifestPushes } from '../../hosted/manifest-pushes.js';
import type { PushRequest } from '../../hosted/push-events.js';
import type { RouteTable } from '../route-table.js';
import { blobRoutes, type BlobsRouteOptions } from './blobs.js';
import { hostedWriteRoutes } from './hosted-writes.js';
import { manifestsRoute } from './manifests.js';
import { referrersRoute } from './referrers.js';
import { tagsRoute } from './tags.js';
import { uploadRoutes } from './upload-routes.js';

export interface HostedRouteOptions extends BlobsRouteOptions {
  blobs: BlobPushes;
  manifests: ManifestPushes;
  pushRequest(c: Context): PushRequest;
}

export function hostedRoutes({ blobs, manifests, pushRequest, ...blobOptions }: HostedRouteOptions): RouteTable<HostedTarget> {
  const reads = blobRoutes(blobOptions);
  const uploads = uploadRoutes({ blobs, pushRequest });
  const writes = hostedWriteRoutes({ manifests, blobs, pushRequest });
  return {
    manifests: { GET: manifestsRoute, HEAD: manifestsRoute, PUT: writes.putManifest, DELETE: writes.deleteManifest },
    blobs: { GET: reads.get, HEAD: reads.head, DELETE: writes.deleteBlob },
    tags: { GET: tagsRoute, HEAD: tagsRoute },
    referrers: { GET: referrersRoute, HEAD: referrersRoute },
    uploads: { POST: uploads.start },
    upload: { GET: uploads.status, PATCH: uploads.append, PUT: uploads.finish, DELETE: uploads.cancel },
  };
}
