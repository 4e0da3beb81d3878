/**
 * Everything under /v2/<name>/...: parses the path, validates the method, routes the name to an
 * upstream, and hands over to the endpoint's handler. Push and delete are not offered by a
 * mirror and answer 405 UNSUPPORTED.
 */
import type { Context } from 'hono';
import { BadRequestError, UnsupportedError } from '../../domain/errors.js';
import type { Puller } from '../../pull-through/puller.js';
import type { UpstreamRouter } from '../../upstream/upstream-router.js';
import { parseApiPath } from '../api-path.js';
import { blobsRoute } from './blobs.js';
import { manifestsRoute } from './manifests.js';
import { referrersRoute } from './referrers.js';
import { tagsRoute } from './tags.js';

export function registryApiRoute(puller: Puller, router: UpstreamRouter) {
  const manifests = manifestsRoute(puller);
  const blobs = blobsRoute(puller);
  const tags = tagsRoute(puller);
  const referrers = referrersRoute(puller);

  return async function registryApi(c: Context): Promise<Response> {
    const api = parseApiPath(rawPathname(c.req.raw.url));
    const method = c.req.method;
    if (api.endpoint === 'uploads' || (method !== 'GET' && method !== 'HEAD')) {
      throw new UnsupportedError(`${method} ${api.endpoint} is not supported: this is a read-only pull-through mirror`);
    }
    const target = router.route(api.name, namespaceParameter(c));
    c.set('target', target);
    switch (api.endpoint) {
      case 'manifests': return manifests(c, target, api.reference);
      case 'blobs': return blobs(c, target, api.reference);
      case 'tags': return tags(c, target);
      case 'referrers': return referrers(c, target, api.reference);
    }
  };
}

/** containerd's hosts.toml mirrors add `?ns=<registry>`; more than one is not meaningful. */
function namespaceParameter(c: Context): string | undefined {
  const values = c.req.queries('ns');
  if (!values || values.length === 0) return undefined;
  if (values.length > 1) throw new BadRequestError('ns given more than once');
  return values[0];
}

/** The path as sent, still percent-encoded: names are validated on exactly what the client sent. */
function rawPathname(url: string): string {
  const afterScheme = url.indexOf('//');
  const pathStart = url.indexOf('/', afterScheme + 2);
  const queryStart = url.indexOf('?', pathStart);
  return url.slice(pathStart, queryStart === -1 ? undefined : queryStart);
}
