/**
 * How upstream answers and network failures become the domain's error classes. Messages name
 * the call and the status or network error code, never a header value: Authorization, tokens and
 * signed redirect URLs must not reach logs or clients.
 */
import {
  DeniedError,
  MirrorError,
  TooManyRequestsError,
  UnauthorizedError,
  UpstreamBadResponseError,
  UpstreamUnavailableError,
} from '../domain/errors.js';

type Headers = Record<string, string | string[] | undefined>;

export function headerValue(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The error for a status the caller has no specific meaning for (404 is always the caller's). */
export function errorForStatus(status: number, headers: Headers, what: string): MirrorError {
  if (status === 401) return new UnauthorizedError(`${what}: the upstream refused our credentials (401)`);
  if (status === 403) return new DeniedError(`${what}: access denied by the upstream (403)`);
  if (status === 429) {
    return new TooManyRequestsError(`${what}: rate limited by the upstream (429)`, parseRetryAfter(headerValue(headers, 'retry-after')));
  }
  if (status >= 500) return new UpstreamUnavailableError(`${what}: the upstream answered ${status}`);
  return new UpstreamBadResponseError(`${what}: unexpected status ${status} from the upstream`);
}

/** Retry-After is delay-seconds or an HTTP-date (RFC 9110 section 10.2.3). */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^[0-9]+$/.test(text)) return Number(text);
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - now) / 1000));
}

/**
 * A failed request or body read: the caller's own abort passes through untouched so it can be
 * recognised; domain errors stay as they are; anything else (refused, reset, DNS, undici
 * timeouts) means the upstream is unavailable.
 */
export function networkFailure(error: unknown, what: string, signal?: AbortSignal): unknown {
  if (signal?.aborted || error instanceof MirrorError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const reason = typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown error';
  return new UpstreamUnavailableError(`${what}: upstream unreachable (${reason})`, { code: reason });
}
