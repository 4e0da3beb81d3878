/**
 * One undici Agent per upstream. An Agent (unlike a Client or Pool) dials any origin, so the same
 * keep-alive pools and timeouts also serve the CDN origins that blob requests redirect to; its
 * connector refuses internal destinations the config did not name (dial-guard.ts).
 */
import { Agent, type Dispatcher } from 'undici';
import { UpstreamBadResponseError } from '../domain/errors.js';
import { DialRefusedError, guardedConnector, type DialPolicy } from './dial-guard.js';
import { networkFailure } from './upstream-failures.js';

export interface UpstreamTimeouts {
  connectMs: number;
  headersMs: number;
  /** Longest silence while a body streams (undici bodyTimeout), not a limit on the whole body. */
  idleMs: number;
}

export type UpstreamResponse = Dispatcher.ResponseData;

/** What the redirect, auth and answer checks read of a response, from undici or blob-socket-client.ts. */
export interface HopResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: { dump(): Promise<unknown> };
}

export interface HopRequest {
  method: 'GET' | 'HEAD';
  url: URL;
  headers: Record<string, string>;
  signal?: AbortSignal;
}

/**
 * Sends one request, no redirects or auth; rejects with domain errors on network failures.
 * `what` names the call in error messages; it must never hold a credential or a signed URL.
 */
export type SendHop<Response extends HopResponse = UpstreamResponse> = (request: HopRequest, what: string) => Promise<Response>;

export const USER_AGENT = 'registry-mirror/0.1';

export function createUpstreamDispatcher(name: string, timeouts: UpstreamTimeouts, policy: DialPolicy): Agent {
  for (const key of ['connectMs', 'headersMs', 'idleMs'] as const) {
    const value = timeouts[key];
    if (!Number.isFinite(value) || value <= 0) {
      throw new TypeError(`upstream ${name}: expected timeouts.${key} to be a positive number of milliseconds, got ${JSON.stringify(value)}`);
    }
  }
  return new Agent({ connect: guardedConnector(policy, timeouts.connectMs), headersTimeout: timeouts.headersMs, bodyTimeout: timeouts.idleMs });
}

export async function sendOnce(dispatcher: Dispatcher, request: HopRequest, what: string): Promise<UpstreamResponse> {
  try {
    return await dispatcher.request({
      origin: request.url.origin,
      path: request.url.pathname + request.url.search,
      method: request.method,
      headers: { ...request.headers, 'user-agent': USER_AGENT },
      signal: request.signal,
    });
  } catch (error) {
    // Never dialled: the upstream sent us somewhere we do not go, which is its fault (502).
    if (error instanceof DialRefusedError) throw new UpstreamBadResponseError(`${what}: ${error.message}`);
    throw networkFailure(error, `${what} (${request.url.host})`, request.signal);
  }
}

/**
 * Reads and drops a body we do not use, so the socket goes back to the keep-alive pool; a body
 * over 128 KiB is destroyed instead. Either way its error is handled (dump listens for it).
 */
export function discardBody(response: HopResponse): void {
  response.body.dump().catch(() => undefined);
}

/**
 * Makes sure an error on `body` can never go unhandled. undici's body emits 'error'
 * (RequestAbortedError) when it is destroyed before it was read to the end, also once every
 * byte has arrived; an 'error' nobody listens to ends the process. Whoever reads the body still
 * sees the error (for await, pipeline, their own listener); an early exit that only destroys it
 * no longer kills the mirror.
 */
export function guardBody<T extends NodeJS.EventEmitter>(body: T): T {
  body.on('error', ignoreError);
  return body;
}

function ignoreError(): void {
  // Handled by whoever reads the body, or nobody needs it any more.
}
