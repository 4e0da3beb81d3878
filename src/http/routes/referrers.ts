/** GET /v2/<name>/referrers/<digest>[?artifactType=] (distribution-spec v1.1 "Listing Referrers"). */
import type { Context } from 'hono';
import { parseDigest } from '../../domain/digest.js';
import { OCI_INDEX } from '../../domain/media-types.js';
import type { ProxiedTarget } from '../../domain/target.js';
import type { RegistryService } from '../../pull-through/registry-service.js';

export async function referrersRoute(c: Context, registry: RegistryService, target: ProxiedTarget, digestText: string): Promise<Response> {
  const digest = parseDigest(digestText);
  const artifactType = c.req.query('artifactType');
  const answer = await registry.referrers(target, digest, artifactType);
  const headers: Record<string, string> = { 'Content-Type': OCI_INDEX, 'Content-Length': String(answer.body.byteLength) };
  if (answer.filtered) headers['OCI-Filters-Applied'] = 'artifactType';
  return new Response(c.req.method === 'HEAD' ? null : answer.body, { status: 200, headers });
}
