/**
 * The one place where errors become HTTP responses: a status per stable error code, and the OCI
 * error body `{"errors":[{"code","message","detail"}]}` (distribution-spec "Error Codes").
 */
import { STATUS_CODES } from 'node:http';
import { AuthenticationRequiredError, ClientRateLimitedError, MalformedRequestError, ManifestBlobUnknownError, MirrorError, RangeNotSatisfiableError, ServerBusyError, TooManyRequestsError, UnsupportedError, UploadOutOfOrderError, type ErrorCode } from '../domain/errors.js';
import { ManifestTooLargeError } from '../domain/manifest.js';

const STATUS_BY_CODE: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  NAME_INVALID: 400,
  TAG_INVALID: 400,
  DIGEST_INVALID: 400,
  SIZE_INVALID: 400,
  MANIFEST_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  NAME_UNKNOWN: 404,
  MANIFEST_UNKNOWN: 404,
  BLOB_UNKNOWN: 404,
  NOT_FOUND: 404,
  BLOB_UPLOAD_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  UNSUPPORTED: 405,
  RANGE_INVALID: 416,
  TOOMANYREQUESTS: 429,
  UPSTREAM_ERROR: 502,
  UNAVAILABLE: 503,
};

export interface ErrorResponseParts {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function errorResponseParts(error: unknown): ErrorResponseParts {
  const known = error instanceof MirrorError;
  const code = known ? error.code : 'UNKNOWN';
  const message = known ? error.message : 'internal error';
  const status = known ? statusOf(error) : 500;
  const headers: Record<string, string> = { 'Content-Type': 'application/json; charset=utf-8' };
  const retryAfter = retryAfterSeconds(error);
  if (retryAfter !== undefined) headers['Retry-After'] = String(retryAfter);
  if (error instanceof RangeNotSatisfiableError) headers['Content-Range'] = `bytes */${error.size}`;
  if (error instanceof UnsupportedError) headers.Allow = error.allow.join(', ');
  if (error instanceof AuthenticationRequiredError) headers['WWW-Authenticate'] = error.challenge;
  // distribution-spec "Pushing a blob in chunks": a 416 says where the upload stands.
  if (error instanceof UploadOutOfOrderError && error.received > 0) headers.Range = `0-${error.received - 1}`;
  const entry: Record<string, unknown> = { code, message };
  if (known && error.detail !== undefined) entry.detail = error.detail;
  return { status, headers, body: JSON.stringify({ errors: entries(error, entry) }) };
}

/** Statuses a class takes apart from its code's: the spec's 413 and 416 carry codes of their own. */
function statusOf(error: MirrorError): number {
  if (error instanceof ManifestTooLargeError) return 413;
  if (error instanceof UploadOutOfOrderError) return 416;
  if (error instanceof MalformedRequestError) return error.status;
  return STATUS_BY_CODE[error.code];
}

/** One entry, or one per missing digest for MANIFEST_BLOB_UNKNOWN (distribution-spec "Push"). */
function entries(error: unknown, entry: Record<string, unknown>): Array<Record<string, unknown>> {
  if (!(error instanceof ManifestBlobUnknownError)) return [entry];
  return error.digests.map((digest) => ({ code: error.code, message: `blob unknown to registry: ${digest}`, detail: { digest } }));
}

function retryAfterSeconds(error: unknown): number | undefined {
  if (error instanceof TooManyRequestsError || error instanceof ClientRateLimitedError || error instanceof ServerBusyError) return error.retryAfterSeconds;
  return undefined;
}

/**
 * An answer that ends its connection, written outside Hono (http-server.ts): after a request
 * that could not be parsed, or whose body was not read, where the next one starts is unknown.
 */
export function closingErrorResponseParts(error: unknown, extraHeaders: Readonly<Record<string, string>> = {}): ErrorResponseParts {
  const { status, headers, body } = errorResponseParts(error);
  return { status, headers: { ...headers, ...extraHeaders, 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' }, body };
}

/** The whole HTTP/1.1 answer as text, for a socket no ServerResponse owns (a request Node's parser refused, a CONNECT). */
export function errorResponseText(error: unknown, extraHeaders: Readonly<Record<string, string>> = {}): string {
  const { status, headers, body } = closingErrorResponseParts(error, extraHeaders);
  const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${head}\r\n${body}`;
}

export function errorResponse(error: unknown, method: string): Response {
  const parts = errorResponseParts(error);
  // A HEAD answer carries the headers a GET would, without the body (RFC 9110 section 9.3.2).
  return new Response(method === 'HEAD' ? null : parts.body, { status: parts.status, headers: parts.headers });
}
