/**
 * `Docker-Distribution-API-Version: registry/2.0` on every answer (distribution-spec
 * "Determining Support"; clients such as dockerd look for it), errors and 404s included.
 * Set on the Node response before the route runs, so that bodies written straight to the socket
 * carry it too (writeHead merges headers set earlier); without a Node response, on Hono's.
 */
import type { MiddlewareHandler } from 'hono';
import { nodeResponseOf } from '../node-response.js';

const NAME = 'Docker-Distribution-API-Version';
const VALUE = 'registry/2.0';
/** For answers written before any middleware runs (http-server.ts). */
export const API_VERSION_HEADER: Readonly<Record<string, string>> = { [NAME]: VALUE };

export function apiVersionHeader(): MiddlewareHandler {
  return async function apiVersionHeader(c, next) {
    const outgoing = nodeResponseOf(c);
    outgoing?.setHeader(NAME, VALUE);
    await next();
    if (!outgoing) c.res.headers.set(NAME, VALUE);
  };
}
