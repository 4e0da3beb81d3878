/** The route table of a pull-through mirror: reads on every endpoint, no uploads (route-table.ts). */
import type { RouteTable } from '../route-table.js';
import { blobRoutes, type BlobsRouteOptions } from './blobs.js';
import { manifestsRoute } from './manifests.js';
import { referrersRoute } from './referrers.js';
import { tagsRoute } from './tags.js';

export function pullRoutes(blobOptions: BlobsRouteOptions = {}): RouteTable {
  const blobs = blobRoutes(blobOptions);
  return {
    manifests: { GET: manifestsRoute, HEAD: manifestsRoute },
    blobs: { GET: blobs.get, HEAD: blobs.head },
    tags: { GET: tagsRoute, HEAD: tagsRoute },
    referrers: { GET: referrersRoute, HEAD: referrersRoute },
    uploads: {},
    upload: {},
  };
}
