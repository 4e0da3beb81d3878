/**
 * Which handler answers which method on which registry endpoint (distribution-spec "Endpoints";
 * compare distribution's registry/handlers/blob.go, a method table per endpoint). Anything else
 * is 405 UNSUPPORTED with an `Allow` header naming what the endpoint does offer (RFC 9110
 * section 15.5.6). A pull-through mirror offers reads only; writes arrive with hosted
 * repositories, as more entries in this table.
 */
import type { Context } from 'hono';
import { UnsupportedError } from '../domain/errors.js';
import type { ProxiedTarget } from '../domain/target.js';
import type { RegistryService } from '../pull-through/registry-service.js';
import type { Endpoint } from './api-path.js';

export type EndpointHandler = (c: Context, registry: RegistryService, target: ProxiedTarget, reference: string) => Promise<Response>;

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export type RouteTable = Readonly<Record<Endpoint, Readonly<Partial<Record<Method, EndpointHandler>>>>>;

/** The handler for `method` on `endpoint`, or a 405 naming the methods there are. */
export function handlerFor(table: RouteTable, endpoint: Endpoint, method: string): EndpointHandler {
  const methods = table[endpoint];
  const handler = methods[method as Method];
  if (handler) return handler;
  throw new UnsupportedError(`${method} ${endpoint} is not supported: this is a read-only pull-through mirror`, Object.keys(methods));
}
