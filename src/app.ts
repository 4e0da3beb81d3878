/**
 * The HTTP application: the distribution API under /v2/ and the operational endpoints. Routes
 * only parse, call the pull-through service, and shape responses; errors are turned into OCI
 * responses in one place (http/oci-error-response.ts).
 */
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { MirrorError, RouteUnknownError } from './domain/errors.js';
import { accessLog } from './http/middleware/access-log.js';
import { apiVersionHeader } from './http/middleware/api-version.js';
import { clientAuth, type CredentialVerifier } from './http/middleware/client-auth.js';
import { noSniff } from './http/middleware/nosniff.js';
import { errorResponse } from './http/oci-error-response.js';
import { mountOperations, type OperationsDependencies } from './http/routes/operations.js';
import { registryApiRoute } from './http/routes/registry-api.js';
import type { RepositoryUsage } from './metrics/repository-usage.js';
import type { AccessPolicy } from './pull-through/access-policy.js';
import type { Puller } from './pull-through/puller.js';
import type { UpstreamRouter } from './upstream/upstream-router.js';

export interface AppDependencies {
  puller: Puller;
  router: UpstreamRouter;
  log: Logger;
  /** Access log, request metrics, /metrics, /readyz, /api/status and the status page at /. */
  observability?: OperationsDependencies & { usage: RepositoryUsage };
  /** Client credentials (auth.htpasswd): every path but /healthz and /readyz needs them. */
  clientCredentials?: CredentialVerifier;
  /** Keeps private upstream content from clients that did not authenticate. */
  accessPolicy?: AccessPolicy;
  /** Config `accel.redirectPrefix`: cached blob bodies are sent by nginx in front (http/accel-redirect.ts). */
  accelRedirectPrefix?: string;
  /** Config `sendfile`: cached blob bodies go out with sendfile(2) where possible (http/send-file.ts). */
  sendfile?: boolean;
}

export function createApp({ puller, router, log, observability, clientCredentials, accessPolicy, accelRedirectPrefix, sendfile }: AppDependencies): Hono {
  const app = new Hono();
  app.use(apiVersionHeader());
  app.use(noSniff());
  // First, so that every answer (errors and 404s included) is logged and counted.
  if (observability) app.use(accessLog({ log, metrics: observability.metrics, usage: observability.usage }));
  if (clientCredentials) app.use(clientAuth(clientCredentials));

  app.onError((error, c) => {
    if (!(error instanceof MirrorError)) log.error({ err: error, method: c.req.method, path: c.req.path }, 'request failed');
    return errorResponse(error, c.req.method);
  });

  // distribution-spec "Determining Support": 200 on /v2/ means the API is spoken here.
  const base = (c: { json: (body: object) => Response }) => c.json({});
  app.get('/v2', base);
  app.get('/v2/', base);

  const registryApi = registryApiRoute(puller, router, accessPolicy, { accelRedirectPrefix, sendfile });
  app.all('/v2/*', registryApi);

  app.get('/healthz', (c) => c.text('ok'));
  if (observability) mountOperations(app, observability);
  // Clients parse error bodies; a path outside every route gets the same OCI shape as the rest.
  app.notFound(function notFound(c) {
    return errorResponse(new RouteUnknownError(`no route for ${c.req.path.slice(0, 200)}`), c.req.method);
  });
  return app;
}
