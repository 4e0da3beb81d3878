/**
 * Everything under /v2/<name>/...: parses the path, validates the method, routes the name to an
 * upstream, and hands over to the endpoint's handler. Push and delete are not offered by a
 * mirror and answer 405 UNSUPPORTED.
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { BadRequestError, UnsupportedError } from '../../domain/errors.js';
import type { AccessPolicy } from '../../pull-through/access-policy.js';
import type { Puller } from '../../pull-through/puller.js';
import type { UpstreamRouter } from '../../upstream/upstream-router.js';
import { parseApiPath } from '../api-path.js';
import { blobsRoute, type BlobsRouteOptions } from './blobs.js';
import { manifestsRoute } from './manifests.js';
import { referrersRoute } from './referrers.js';
import { tagsRoute } from './tags.js';

/** `access`: checks for clients that did not authenticate (pull-through/access-policy.ts). */
export function registryApiRoute(puller: Puller, router: UpstreamRouter, access?: Pick<AccessPolicy, 'assertAnonymousMayRead'>, blobOptions: BlobsRouteOptions = {}) {
  const manifests = manifestsRoute(puller);
  const blobs = blobsRoute(puller, blobOptions);
  const tags = tagsRoute(puller);
  const referrers = referrersRoute(puller);

  return async function registryApi(c: Context): Promise<Response> {
    const api = parseApiPath(rawPathname(c));
    const method = c.req.method;
    if (api.endpoint === 'uploads' || (method !== 'GET' && method !== 'HEAD')) {
      throw new UnsupportedError(`${method} ${api.endpoint} is not supported: this is a read-only pull-through mirror`);
    }
    const target = router.route(api.name, namespaceParameter(c));
    c.set('target', target);
    if (access && c.get('clientUser') === undefined) {
      await access.assertAnonymousMayRead(target, { endpoint: api.endpoint as Exclude<typeof api.endpoint, 'uploads'>, reference: api.reference });
    }
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

/**
 * The path as sent, still percent-encoded: names are validated on exactly what the client sent.
 * It comes from the Node request where there is one, because the Request URL has been through
 * the WHATWG parser, which resolves `..` and `%2e%2e` segments: `/v2/library/../alpine/...`
 * would otherwise reach the upstream as `alpine`.
 */
function rawPathname(c: Context): string {
  const target = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.url;
  if (target?.startsWith('/')) return target.split('?', 1)[0]!;
  const url = c.req.raw.url;
  const afterScheme = url.indexOf('//');
  const pathStart = url.indexOf('/', afterScheme + 2);
  const queryStart = url.indexOf('?', pathStart);
  return url.slice(pathStart, queryStart === -1 ? undefined : queryStart);
}
