/** GET /v2/<name>/referrers/<digest>[?artifactType=] (distribution-spec v1.1 "Listing Referrers"). */
import type { Context } from 'hono';
import { parseDigest } from '../../domain/digest.js';
import { OCI_INDEX } from '../../domain/media-types.js';
import type { RepositoryTarget } from '../../domain/target.js';
import type { RegistryService } from '../../pull-through/registry-service.js';
import { requestOptions } from '../request-options.js';
import { pageRequest } from './tags.js';

export async function referrersRoute<T extends RepositoryTarget>(c: Context, registry: RegistryService<T>, target: T, digestText: string): Promise<Response> {
  const digest = parseDigest(digestText);
  const artifactType = c.req.query('artifactType');
  const page = pageRequest(c);
  const answer = await registry.referrers(target, digest, artifactType, page, requestOptions(c));
  const headers: Record<string, string> = { 'Content-Type': OCI_INDEX, 'Content-Length': String(answer.body.byteLength) };
  if (answer.filtered) headers['OCI-Filters-Applied'] = 'artifactType';
  if (answer.nextLast !== undefined) headers.Link = nextPageLink(c.req.url, page, answer.nextLast);
  return new Response(c.req.method === 'HEAD' ? null : answer.body, { status: 200, headers });
}

/** distribution-spec "Listing Referrers": the next page by `Link: <url>; rel="next"` (RFC 8288), relative so it holds behind any front. */
function nextPageLink(requestUrl: string, page: { n?: number }, last: string): string {
  const url = new URL(requestUrl);
  const query = new URLSearchParams(url.search);
  if (page.n !== undefined) query.set('n', String(page.n));
  query.set('last', last);
  return `<${url.pathname}?${query.toString()}>; rel="next"`;
}
