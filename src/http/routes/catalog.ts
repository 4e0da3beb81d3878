/** GET /v2/_catalog (hosted/catalog-listing.ts), `n` and `last`, a relative Link when more follow. */
import type { Context } from 'hono';
import { type CatalogListingOptions, listCatalog } from '../../hosted/catalog-listing.js';
import '../app-env.js';
import { pageRequest } from './tags.js';

export function catalogRoute(options: CatalogListingOptions) {
  return async function catalog(c: Context): Promise<Response> {
    const page = pageRequest(c);
    const listed = await listCatalog(options, c.get('clientUser'), page);
    const body = Buffer.from(JSON.stringify({ repositories: listed.repositories }));
    const headers: Record<string, string> = { 'Content-Type': 'application/json', 'Content-Length': String(body.byteLength) };
    if (listed.nextLast !== undefined) {
      const query = new URLSearchParams({ n: String(listed.repositories.length), last: listed.nextLast });
      headers.Link = `</v2/_catalog?${query.toString()}>; rel="next"`;
    }
    return new Response(c.req.method === 'HEAD' ? null : body, { status: 200, headers });
  };
}
