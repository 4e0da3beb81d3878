/**
 * What a route hands the registry service with its call (pull-through/registry-service.ts
 * RequestOptions): the request's scope, which the access log keeps on the context, to charge
 * upstream time to; for a blob, also the signal of a client gone (client-gone.ts).
 */
import type { Context } from 'hono';
import type { BlobRequestOptions, RequestOptions } from '../pull-through/registry-service.js';
import './app-env.js';
import { clientGoneSignal } from './client-gone.js';

export function requestOptions(c: Context): RequestOptions {
  const scope = c.get('requestScope');
  return scope ? { chargeTo: scope } : {};
}

/** The signal is made only when a fetch asks for it, so the warm path pays nothing for it. */
export function blobRequestOptions(c: Context): BlobRequestOptions {
  let signal: AbortSignal | undefined;
  return {
    ...requestOptions(c),
    get signal() {
      return (signal ??= clientGoneSignal(c));
    },
  };
}
