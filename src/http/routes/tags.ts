/** GET /v2/<name>/tags/list (distribution-spec "Listing Tags"), `n` and `last` passed through. */
import type { Context } from 'hono';
import { BadRequestError } from '../../domain/errors.js';
import type { RepositoryTarget } from '../../domain/target.js';
import type { PageRequest } from '../../metadata/metadata-store.js';
import type { RegistryService } from '../../pull-through/registry-service.js';
import { tagsLinkHeader } from '../link-header.js';
import { requestOptions } from '../request-options.js';

export async function tagsRoute<T extends RepositoryTarget>(c: Context, registry: RegistryService<T>, target: T): Promise<Response> {
  const list = await registry.tagList(target, pageRequest(c), requestOptions(c));
  const headers: Record<string, string> = { 'Content-Type': 'application/json', 'Content-Length': String(list.body.byteLength) };
  // The upstream's Link points at the upstream: rebuilt for the client's route (link-header.ts).
  Object.assign(headers, tagsLinkHeader(list.link, c.req.url));
  return new Response(c.req.method === 'HEAD' ? null : list.body, { status: 200, headers });
}

/**
 * The largest page asked of a store or an upstream. A larger `n` is a page of this size: the
 * spec lets a registry answer fewer than `n` (with a Link to the rest), never refuse one.
 */
const MAX_PAGE_ENTRIES = 999_999;

/** `n` and `last` of a paged list (tags, referrers, catalog); a malformed `n` is a 400. */
export function pageRequest(c: Context): PageRequest {
  const page: PageRequest = {};
  const n = c.req.query('n');
  const last = c.req.query('last');
  if (n !== undefined) {
    if (!/^[0-9]+$/.test(n)) throw new BadRequestError(`n must be a non-negative integer, got ${JSON.stringify(n.slice(0, 50))}`);
    page.n = Math.min(Number(n), MAX_PAGE_ENTRIES);
  }
  if (last !== undefined) page.last = last.slice(0, 256);
  return page;
}
