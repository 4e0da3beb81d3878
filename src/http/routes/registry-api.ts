/**
 * Everything under /v2/<name>/...: parses the path, picks the handler from the route table
 * (405 for what no endpoint offers), routes the name to its repository, and hands over. Clients
 * that did not authenticate get the registry service behind the access policy, when there is
 * one (pull-through/guarded-registry.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { BadRequestError } from '../../domain/errors.js';
import type { RegistryService } from '../../pull-through/registry-service.js';
import type { UpstreamRouter } from '../../upstream/upstream-router.js';
import '../app-env.js';
import { parseApiPath } from '../api-path.js';
import { handlerFor, type RouteTable } from '../route-table.js';

export interface RegistryApiOptions {
  registry: RegistryService;
  /** For clients that did not authenticate; undefined when every client may read everything. */
  guarded?: RegistryService;
  router: UpstreamRouter;
  routes: RouteTable;
}

export function registryApiRoute({ registry, guarded, router, routes }: RegistryApiOptions) {
  return async function registryApi(c: Context): Promise<Response> {
    const api = parseApiPath(rawPathname(c));
    const handler = handlerFor(routes, api.endpoint, c.req.method);
    const target = router.route(api.name, namespaceParameter(c));
    c.set('target', target);
    const service = guarded && c.get('clientUser') === undefined ? guarded : registry;
    return handler(c, service, target, api.reference);
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
