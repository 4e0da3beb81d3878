/**
 * Everything under /v2/<name>/...: parses the path, routes the name to its repository (hosted or
 * proxied), picks the handler from that kind's route table (405 for what it does not offer: a
 * write to a proxied name is refused there, naming the hosted patterns, and never reaches an
 * upstream), checks the client may take the action (repository-access.ts), and hands over.
 * Clients that did not authenticate get the pull-through service behind the access policy,
 * when there is one (pull-through/guarded-registry.ts); authenticated ones, under access rules,
 * behind their grants on content by digest (pull-through/granted-registry.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { BadRequestError, NameUnknownError } from '../../domain/errors.js';
import type { HostedTarget, ProxiedTarget } from '../../domain/target.js';
import type { AccessPolicy } from '../../hosted/access-rules.js';
import type { RegistryService } from '../../pull-through/registry-service.js';
import type { UpstreamRouter } from '../../upstream/upstream-router.js';
import '../app-env.js';
import { parseApiPath, type ApiPath } from '../api-path.js';
import { actionOf, requireAccess } from '../repository-access.js';
import { handlerFor, type RouteTable } from '../route-table.js';

export interface RegistryApiOptions {
  registry: RegistryService;
  /** For clients that did not authenticate; undefined when every client may read everything. */
  guarded?: RegistryService;
  /** For an authenticated client, under access rules; undefined when every such client may read everything. */
  granted?: (user: string) => RegistryService;
  router: UpstreamRouter;
  routes: RouteTable;
  /** Hosted repositories: their read service and route table. */
  hosted?: { registry: RegistryService<HostedTarget>; routes: RouteTable<HostedTarget> };
  /** Who may pull, push and delete what; undefined: anyone may pull, nobody writes. */
  access?: AccessPolicy;
}

export function registryApiRoute(options: RegistryApiOptions) {
  const { registry, guarded, granted, router, routes, hosted, access } = options;
  return async function registryApi(c: Context): Promise<Response> {
    const api = parseApiPath(rawPathname(c));
    const target = router.target(api.name, namespaceParameter(c));
    c.set('target', target);
    const user = c.get('clientUser');
    if (target.kind === 'hosted') {
      if (!hosted) throw new NameUnknownError(`repository ${target.repository} is not known to this registry`);
      const handler = handlerFor(hosted.routes, api.endpoint, c.req.method, 'hosted repositories do not offer it');
      if (access) requireAccess(access, user, target, actionOf(api.endpoint, c.req.method));
      return handler(c, hosted.registry, target, api.reference);
    }
    const handler = handlerFor(routes, api.endpoint, c.req.method, proxiedRefusal(api, target, router));
    if (access) requireAccess(access, user, target, 'pull');
    const service = user === undefined ? guarded ?? registry : granted?.(user) ?? registry;
    return handler(c, service, target, api.reference);
  };
}

/** Why a proxied name takes no writes, and which names do (issue 14: a write to a proxied name names the hosted patterns). */
function proxiedRefusal(api: ApiPath, target: ProxiedTarget, router: UpstreamRouter): string {
  return `${api.name} is proxied from ${target.upstream} and is read-only here; hosted repositories (which take pushes): ${router.hosted.describe()}`;
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
