/**
 * The HTTP application: the distribution API under /v2/ and the operational endpoints. Routes
 * only parse, call the pull-through service, and shape responses; errors are turned into OCI
 * responses in one place (http/oci-error-response.ts).
 */
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { MirrorError } from './domain/errors.js';
import { errorResponse } from './http/oci-error-response.js';
import { registryApiRoute } from './http/routes/registry-api.js';
import type { Puller } from './pull-through/puller.js';
import type { UpstreamRouter } from './upstream/upstream-router.js';

export interface AppDependencies {
  puller: Puller;
  router: UpstreamRouter;
  log: Logger;
}

const API_VERSION_HEADER = 'Docker-Distribution-API-Version';

export function createApp({ puller, router, log }: AppDependencies): Hono {
  const app = new Hono();

  app.onError((error, c) => {
    if (!(error instanceof MirrorError)) log.error({ err: error, method: c.req.method, path: c.req.path }, 'request failed');
    const response = errorResponse(error, c.req.method);
    response.headers.set(API_VERSION_HEADER, 'registry/2.0');
    return response;
  });

  // distribution-spec "Determining Support": 200 on /v2/ means the API is spoken here.
  const base = (c: { json: (body: object, status: 200, headers: Record<string, string>) => Response }) =>
    c.json({}, 200, { [API_VERSION_HEADER]: 'registry/2.0' });
  app.get('/v2', base);
  app.get('/v2/', base);

  const registryApi = registryApiRoute(puller, router);
  app.all('/v2/*', async function withApiVersion(c) {
    const response = await registryApi(c);
    if (response.headers.get('x-hono-already-sent') === null) response.headers.set(API_VERSION_HEADER, 'registry/2.0');
    return response;
  });

  app.get('/healthz', (c) => c.text('ok'));
  return app;
}
