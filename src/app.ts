/**
 * The HTTP application: the distribution API under /v2/ and the operational endpoints. Routes
 * only parse, call the registry service, and shape responses; errors are turned into OCI
 * responses in one place (http/oci-error-response.ts).
 */
import { Hono, type Context } from 'hono';
import type { Logger } from 'pino';
import { MirrorError, RouteUnknownError } from './domain/errors.js';
import { accessLog } from './http/middleware/access-log.js';
import { apiVersionHeader } from './http/middleware/api-version.js';
import { clientAuth, type CredentialVerifier } from './http/middleware/client-auth.js';
import { noSniff } from './http/middleware/nosniff.js';
import { errorResponse } from './http/oci-error-response.js';
import { mountOperations, type OperationsDependencies } from './http/routes/operations.js';
import { pullRoutes } from './http/routes/pull-routes.js';
import { registryApiRoute } from './http/routes/registry-api.js';
import { catalogRoute } from './http/routes/catalog.js';
import { hostedRoutes } from './http/routes/hosted-routes.js';
import { pushRequestOf } from './http/repository-access.js';
import type { HostedServices } from './hosted/hosted-services.js';
import { pullableBy, type AccessPolicy } from './hosted/access-rules.js';
import type { AccessLogOptions } from './http/middleware/access-log.js';
import type { RegistryService } from './pull-through/registry-service.js';
import type { UpstreamRouter } from './upstream/upstream-router.js';
import { DEFAULT_SEND_TIMEOUT_MS } from './http/routes/blobs.js';
import { warmBlobLane, type RequestLane } from './http/warm-blob-lane.js';

export interface AppDependencies {
  registry: RegistryService;
  /** The registry behind the access policy, for clients that did not authenticate (pull-through/guarded-registry.ts). */
  guarded?: RegistryService;
  /** The registry as an authenticated client gets it under access rules (pull-through/granted-registry.ts). */
  granted?: (user: string) => RegistryService;
  router: UpstreamRouter;
  log: Logger;
  /** Access log, request metrics, /metrics, /readyz, /api/status and the status page at /. */
  observability?: OperationsDependencies & Pick<AccessLogOptions, 'usage' | 'recorder'>;
  /** Client credentials (auth.htpasswd): every path but /healthz and /readyz needs them. */
  clientCredentials?: CredentialVerifier;
  /** Config `accel.redirectPrefix`: cached blob bodies are sent by nginx in front (http/accel-redirect.ts). */
  accelRedirectPrefix?: string;
  /** Config `sendfile`: blob bodies go out with sendfile(2) where possible (http/send-file.ts). */
  sendfile?: boolean;
  /** Config `listen.sendTimeoutSeconds`, in ms: clients that stop reading a blob are cut off (http/send-watchdog.ts). */
  sendTimeoutMs?: number;
  /** Hosted repositories (pushes, deletions, the catalog); config `listen.trustForwardedHeaders` for their Locations. */
  hosted?: { services: HostedServices; trustForwardedHeaders: boolean };
  /** Routes for the other replicas only (replicas/fleet-routes.ts), mounted before client auth: they carry the fleet's own signature. */
  internalRoutes?: (app: Hono) => void;
}

export function createApp({ registry, guarded, granted, router, log, observability, clientCredentials, accelRedirectPrefix, sendfile, sendTimeoutMs, hosted, internalRoutes }: AppDependencies): Hono {
  const app = new Hono();
  app.use(apiVersionHeader());
  app.use(noSniff());
  // First, so that every answer (errors and 404s included) is logged and counted.
  if (observability) app.use(accessLog({ log, metrics: observability.metrics, usage: observability.usage, recorder: observability.recorder }));
  internalRoutes?.(app);
  if (clientCredentials) app.use(clientAuth(clientCredentials));

  app.onError((error, c) => {
    if (!(error instanceof MirrorError)) log.error({ err: error, method: c.req.method, path: c.req.path }, 'request failed');
    return errorResponse(error, c.req.method);
  });

  // distribution-spec "Determining Support": 200 on /v2/ means the API is spoken here.
  const base = (c: { json: (body: object) => Response }) => c.json({});
  app.get('/v2', base);
  app.get('/v2/', base);

  const routes = pullRoutes({ accelRedirectPrefix, sendfile, sendTimeoutMs });
  if (hosted) app.on(['GET', 'HEAD'], '/v2/_catalog', catalogRoute(hosted.services.catalog));
  app.all('/v2/*', registryApiRoute({ registry, guarded, granted, router, routes, ...(hosted ? hostedApi(hosted, { accelRedirectPrefix, sendfile, sendTimeoutMs }) : {}) }));

  app.get('/healthz', (c) => c.text('ok'));
  if (observability) mountOperations(app, { ...observability, ...visibility(hosted?.services.access) });
  // Clients parse error bodies; a path outside every route gets the same OCI shape as the rest.
  app.notFound(function notFound(c) {
    return errorResponse(new RouteUnknownError(`no route for ${c.req.path.slice(0, 200)}`), c.req.method);
  });
  return app;
}

/**
 * The warm-blob lane in front of the app (http/warm-blob-lane.ts), for anonymous clients; none
 * when every client authenticates (auth.htpasswd), or without the access log to record its answers.
 */
export function createWarmBlobLane({ registry, guarded, router, log, observability, clientCredentials, sendfile, sendTimeoutMs, hosted }: AppDependencies): RequestLane | undefined {
  if (clientCredentials || !observability) return undefined;
  return warmBlobLane({
    registry: guarded ?? registry, router, access: hosted?.services.access,
    accessLog: { log, metrics: observability.metrics, usage: observability.usage, recorder: observability.recorder },
    sendfile: sendfile ?? true, sendTimeoutMs: sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS,
  });
}

function visibility(access: AccessPolicy | undefined): Pick<OperationsDependencies, 'visibleTo'> {
  const visibleTo = access && pullableBy(access);
  return visibleTo ? { visibleTo } : {};
}

function hostedApi({ services, trustForwardedHeaders }: NonNullable<AppDependencies['hosted']>, blobOptions: { accelRedirectPrefix?: string | undefined; sendfile?: boolean | undefined; sendTimeoutMs?: number | undefined }) {
  const pushRequest = (c: Context) => pushRequestOf(c, trustForwardedHeaders);
  const routes = hostedRoutes({ blobs: services.blobs, manifests: services.manifests, pushRequest, ...withoutUndefined(blobOptions) });
  return { hosted: { registry: services.registry, routes }, access: services.access };
}

function withoutUndefined<T extends object>(fields: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
