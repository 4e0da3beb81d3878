/**
 * A token server shaped like Docker Hub's (auth.docker.io), for the hub stand-in registry.
 *
 *   GET /token?service=S&scope=repository:NAME:pull[,push][&scope=...]   anonymous or HTTP Basic
 *
 * Tokens are RS256 JWTs whose `x5c` header carries a self-signed certificate; that certificate
 * is the registry's `auth.token.rootcertbundle`, which is how distribution verifies them.
 * Anonymous callers get `pull` on public repositories; the one user gets pull+push everywhere.
 * Repositories under `testuser/` are private: anonymous tokens grant nothing there, so the
 * registry answers 401 just as Docker Hub does for a private repository.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { X509Certificate, randomBytes, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RequestLog, authorizationKind, listenOnLoopback, closeServer } from './request-log.js';

export const HUB_SERVICE = 'registry.docker.io';
export const TOKEN_ISSUER = 'interop-token-issuer';
export const HUB_USER = 'testuser';
export const HUB_PASSWORD = 'testpass';
const PRIVATE_PREFIX = 'testuser/';
const TOKEN_TTL_SECONDS = 300;

export interface TokenServer {
  readonly url: string;
  readonly port: number;
  /** PEM certificate whose key signs the tokens (the registry's rootcertbundle). */
  readonly certFile: string;
  readonly requests: RequestLog;
  /** Every token handed out, so tests can check that none of them leaks (e.g. into logs). */
  readonly issuedTokens: readonly string[];
  close(): Promise<void>;
}

interface Scope {
  type: string;
  name: string;
  actions: string[];
}

export async function startTokenServer(dir: string): Promise<TokenServer> {
  const keyFile = join(dir, 'token-key.pem');
  const certFile = join(dir, 'token-cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2', '-subj', '/CN=interop token signer', '-keyout', keyFile, '-out', certFile], { stdio: 'pipe' });
  const key = readFileSync(keyFile, 'utf8');
  const header = { typ: 'JWT', alg: 'RS256', x5c: [new X509Certificate(readFileSync(certFile)).raw.toString('base64')] };
  const requests = new RequestLog('token');
  const issuedTokens: string[] = [];

  const server = createServer(function issueToken(req, res) {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const entry = { method: req.method ?? '', path: url.pathname, url: req.url ?? '/', status: 200, authorization: authorizationKind(req.headers.authorization) };
    requests.record(entry);
    req.resume();
    const user = basicUser(req);
    if (url.pathname !== '/token' || req.method !== 'GET') entry.status = 404;
    else if (user === 'rejected') entry.status = 401;
    const signed = entry.status === 200 ? signToken(key, header, user, url) : undefined;
    if (signed) issuedTokens.push(signed.token);
    const body = signed
      ? { ...signed, expires_in: TOKEN_TTL_SECONDS, issued_at: new Date().toISOString() }
      : { details: entry.status === 401 ? 'incorrect username or password' : 'not found' };
    res.writeHead(entry.status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  const port = await listenOnLoopback(server);
  return { url: `http://127.0.0.1:${port}/token`, port, certFile, requests, issuedTokens, close: () => closeServer(server) };
}

function signToken(key: string, header: object, user: string | null, url: URL): { token: string; access_token: string } {
  const now = Math.floor(Date.now() / 1000);
  const scopes = url.searchParams.getAll('scope').flatMap((value) => value.split(' ')).map(parseScope).filter((scope) => scope !== null);
  const claims = {
    iss: TOKEN_ISSUER,
    sub: user ?? '',
    aud: url.searchParams.get('service') ?? HUB_SERVICE,
    exp: now + TOKEN_TTL_SECONDS,
    nbf: now - 5,
    iat: now,
    jti: randomBytes(12).toString('hex'),
    access: scopes.map((scope) => grant(user, scope)),
  };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const token = `${signingInput}.${sign('RSA-SHA256', Buffer.from(signingInput), key).toString('base64url')}`;
  return { token, access_token: token };
}

/** `repository:NAME:ACTIONS`; NAME itself may not contain ':' here. */
function parseScope(text: string): Scope | null {
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first < 0 || last <= first) return null;
  return { type: text.slice(0, first), name: text.slice(first + 1, last), actions: text.slice(last + 1).split(',').filter(Boolean) };
}

function grant(user: string | null, scope: Scope): Scope {
  let allowed: string[] = [];
  if (scope.type === 'repository') {
    if (user) allowed = ['pull', 'push', 'delete', '*'];
    else if (!scope.name.startsWith(PRIVATE_PREFIX)) allowed = ['pull'];
  }
  return { ...scope, actions: scope.actions.filter((action) => allowed.includes(action)) };
}

/** null for anonymous callers, 'rejected' for wrong credentials. */
function basicUser(req: IncomingMessage): string | null {
  const header = req.headers.authorization ?? '';
  if (!/^basic /i.test(header)) return null;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const valid = colon > 0 && decoded.slice(0, colon) === HUB_USER && decoded.slice(colon + 1) === HUB_PASSWORD;
  return valid ? HUB_USER : 'rejected';
}

function base64url(text: string): string {
  return Buffer.from(text).toString('base64url');
}
