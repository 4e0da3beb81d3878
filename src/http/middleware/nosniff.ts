/**
 * `X-Content-Type-Options: nosniff` on every answer, errors and 404s included, so that no
 * browser guesses a type (say text/html) for bytes served on the mirror's origin, whatever an
 * upstream sent (https://fetch.spec.whatwg.org/#x-content-type-options-header). Set on the Node
 * response before the route runs, like api-version.ts, so bodies written straight to the socket
 * (blobs) carry it too; without a Node response, on Hono's.
 */
import type { MiddlewareHandler } from 'hono';
import { nodeResponseOf } from '../node-response.js';

const NAME = 'X-Content-Type-Options';
const VALUE = 'nosniff';
/** For answers written before any middleware runs (http-server.ts). */
export const NOSNIFF_HEADER: Readonly<Record<string, string>> = { [NAME]: VALUE };

export function noSniff(): MiddlewareHandler {
  return async function noSniff(c, next) {
    const outgoing = nodeResponseOf(c);
    outgoing?.setHeader(NAME, VALUE);
    await next();
    if (!outgoing) c.res.headers.set(NAME, VALUE);
  };
}
