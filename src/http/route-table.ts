/**
 * Which handler answers which method on which registry endpoint (distribution-spec "Endpoints";
 * compare distribution's registry/handlers/blob.go, a method table per endpoint). There is one
 * table per kind of repository: proxied repositories are read-only (routes/pull-routes.ts),
 * hosted ones take pushes and deletes too (routes/hosted-routes.ts). Anything else is 405
 * UNSUPPORTED with an `Allow` header naming what the endpoint offers for that kind of
 * repository (RFC 9110 section 15.5.6).
 */
import type { Context } from 'hono';
import { UnsupportedError } from '../domain/errors.js';
import type { ProxiedTarget, RepositoryTarget } from '../domain/target.js';
import type { RegistryService } from '../pull-through/registry-service.js';
import type { Endpoint } from './api-path.js';

export type EndpointHandler<T extends RepositoryTarget = ProxiedTarget> = (c: Context, registry: RegistryService<T>, target: T, reference: string) => Promise<Response>;

/** A read handler serves proxied and hosted repositories alike, over their registry service. */
export type ReadHandler = <T extends RepositoryTarget>(c: Context, registry: RegistryService<T>, target: T, reference: string) => Promise<Response>;

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type RouteTable<T extends RepositoryTarget = ProxiedTarget> = Readonly<Record<Endpoint, Readonly<Partial<Record<Method, EndpointHandler<T>>>>>>;

/**
 * The handler for `method` on `endpoint`, or a 405 naming the methods there are. `refusal` says
 * why a method is missing (for proxied names: they take no pushes, and which names do).
 */
export function handlerFor<T extends RepositoryTarget>(table: RouteTable<T>, endpoint: Endpoint, method: string, refusal = 'this is a read-only pull-through mirror'): EndpointHandler<T> {
  const methods = table[endpoint];
  const handler = methods[method as Method];
  if (handler) return handler;
  throw new UnsupportedError(`${method} ${endpoint} is not supported: ${refusal}`, Object.keys(methods));
}
