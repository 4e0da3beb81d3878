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

/**
 * The longest pause an upstream can ask for: Docker Hub counts pulls in 6-hour windows
 * (`ratelimit-limit: 100;w=21600`), so no honest registry needs more, and one answer with a huge
 * Retry-After must not stop manifest GETs for decades.
 */
export const MAX_RETRY_AFTER_SECONDS = 6 * 60 * 60;

/** Retry-After is delay-seconds or an HTTP-date (RFC 9110 section 10.2.3); capped at MAX_RETRY_AFTER_SECONDS. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  const seconds = /^[0-9]+$/.test(text) ? Number(text) : Math.ceil((Date.parse(text) - now) / 1000);
  return Number.isNaN(seconds) ? undefined : Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(0, seconds));
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
