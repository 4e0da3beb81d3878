/** GET/HEAD /v2/<name>/manifests/<reference> (distribution-spec "Pulling manifests"). */
import type { Context } from 'hono';
import { parseManifestReference } from '../../domain/reference.js';
import type { RepositoryTarget } from '../../domain/target.js';
import type { RegistryService } from '../../pull-through/registry-service.js';
import { entityTagOf, ifNoneMatchNames, notModified } from '../entity-tags.js';
import { requestOptions } from '../request-options.js';

export async function manifestsRoute<T extends RepositoryTarget>(c: Context, registry: RegistryService<T>, target: T, referenceText: string): Promise<Response> {
  const reference = parseManifestReference(referenceText);
  const accept = c.req.raw.headers.get('accept');
  const manifest = await registry.manifest(target, reference, accept ? [accept] : [], requestOptions(c));
  c.set('cacheResult', manifest.origin);
  if (ifNoneMatchNames(c, entityTagOf(manifest.digest))) return notModified(manifest.digest);
  const headers = {
    'Content-Type': manifest.mediaType,
    'Content-Length': String(manifest.bytes.byteLength),
    'Docker-Content-Digest': manifest.digest,
    ETag: entityTagOf(manifest.digest),
  };
  return new Response(c.req.method === 'HEAD' ? null : manifest.bytes, { status: 200, headers });
}
