/** GET /v2/<name>/tags/list (distribution-spec "Listing Tags"), `n` and `last` passed through. */
import type { Context } from 'hono';
import { BadRequestError } from '../../domain/errors.js';
import type { Puller } from '../../pull-through/puller.js';
import { tagsLinkHeader } from '../link-header.js';
import type { RepositoryTarget } from '../../upstream/upstream-router.js';

export function tagsRoute(puller: Puller) {
  return async function tags(c: Context, target: RepositoryTarget): Promise<Response> {
    const list = await puller.tagList(target, paginationQuery(c));
    const headers: Record<string, string> = { 'Content-Type': 'application/json', 'Content-Length': String(list.body.byteLength) };
    // The upstream's Link points at the upstream: rebuilt for the client's route (link-header.ts).
    Object.assign(headers, tagsLinkHeader(list.link, c.req.url));
    return new Response(c.req.method === 'HEAD' ? null : list.body, { status: 200, headers });
  };
}

function paginationQuery(c: Context): string {
  const params = new URLSearchParams();
  const n = c.req.query('n');
  const last = c.req.query('last');
  if (n !== undefined) {
    if (!/^[0-9]{1,6}$/.test(n)) throw new BadRequestError(`n must be a non-negative integer, got ${JSON.stringify(n.slice(0, 50))}`);
    params.set('n', n);
  }
  if (last !== undefined) params.set('last', last.slice(0, 256));
  return params.toString();
}
