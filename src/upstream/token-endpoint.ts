/**
 * Asks a token realm for a bearer token (distribution "Token Authentication Specification"):
 * `GET realm?service=S&scope=repository:NAME:pull`, with HTTP Basic credentials when the upstream
 * has them. The answer carries `token` or its OAuth2 alias `access_token`, and `expires_in`
 * (60 seconds when absent, per the spec). Redirects are not followed: credentials go to the
 * trusted realm and nowhere else.
 */
import { UpstreamBadResponseError } from '../domain/errors.js';
import { discardBody, type SendHop } from './http-dispatcher.js';
import { readBodyLimited } from './read-body.js';
import type { IssuedToken } from './token-cache.js';
import { errorForStatus } from './upstream-failures.js';

export interface TokenRequest {
  realm: URL;
  service: string | undefined;
  scope: string;
  /** A ready `Basic ...` header value, or undefined for an anonymous token. */
  basicAuthorization: string | undefined;
}

const DEFAULT_EXPIRES_IN_SECONDS = 60;
/**
 * What can follow `Bearer ` in an Authorization header: visible ASCII without spaces. RFC 6750's
 * b64token is narrower; this only keeps out what would break the header (CR, LF, NUL, spaces),
 * which is the token endpoint's fault, not an outage.
 */
const BEARER_TOKEN = /^[\x21-\x7e]+$/;
const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;

export async function requestToken(send: SendHop, request: TokenRequest, upstreamName: string): Promise<IssuedToken> {
  const what = `token request to ${request.realm.host} for upstream ${upstreamName}`;
  const url = new URL(request.realm);
  if (request.service !== undefined) url.searchParams.set('service', request.service);
  url.searchParams.set('scope', request.scope);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (request.basicAuthorization) headers.authorization = request.basicAuthorization;
  const response = await send({ method: 'GET', url, headers }, what);
  if (response.statusCode !== 200) {
    discardBody(response);
    throw errorForStatus(response.statusCode, response.headers, what);
  }
  return parseTokenResponse(await readBodyLimited(response, MAX_TOKEN_RESPONSE_BYTES, what), what);
}

function parseTokenResponse(body: Buffer, what: string): IssuedToken {
  let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
  } catch {
    throw new UpstreamBadResponseError(`${what}: the answer is not JSON`);
  }
  const token = [parsed?.token, parsed?.access_token].find((value) => typeof value === 'string' && value !== '');
  if (typeof token !== 'string') throw new UpstreamBadResponseError(`${what}: the answer has no token`);
  if (!BEARER_TOKEN.test(token)) throw new UpstreamBadResponseError(`${what}: the answer's token is not a bearer token (it holds spaces or control characters)`);
  const expiresIn = parsed?.expires_in;
  const valid = typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0;
  return { token, expiresInSeconds: valid ? expiresIn : DEFAULT_EXPIRES_IN_SECONDS };
}
