/**
 * Small real HTTP servers on 127.0.0.1:0 for the upstream client tests: each records every
 * request it receives (method, path, headers) so tests can assert counts and headers.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UpstreamRegistry, type UpstreamOptions, type UpstreamResponseInfo } from '../../src/upstream/upstream-registry.js';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export interface FakeServer {
  origin: string;
  /** host:port */
  host: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

const open: Server[] = [];

export async function startServer(handler: Handler): Promise<FakeServer> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  open.push(server);
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, requests, close: () => closeServer(server) };
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** For afterEach: closes every server the test started. */
export async function closeAllServers(): Promise<void> {
  await Promise.all(open.splice(0).filter((server) => server.listening).map(closeServer));
}

/** A port nothing listens on: bound by the OS, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function send(res: ServerResponse, status: number, headers: Record<string, string | number> = {}, body: string | Buffer = ''): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'content-length': bytes.length, ...headers });
  res.end(bytes);
}

export interface TokenServer extends FakeServer {
  /** Tokens issued so far, in order. */
  issued: string[];
  /** Called with each token as it is issued. */
  onIssue: (token: string) => void;
}

/** A token endpoint issuing `tok-1`, `tok-2`... Optional `basic` is the one accepted `user:password`. */
export async function startTokenServer(options: { expiresIn?: number; field?: 'token' | 'access_token'; basic?: string } = {}): Promise<TokenServer> {
  const issued: string[] = [];
  let tokenServer: TokenServer | undefined;
  const server = await startServer((req, res) => {
    if (options.basic !== undefined && req.headers.authorization !== `Basic ${Buffer.from(options.basic).toString('base64')}`) {
      return send(res, 401, { 'www-authenticate': 'Basic realm="token"' });
    }
    const token = `tok-${issued.length + 1}`;
    issued.push(token);
    tokenServer?.onIssue(token);
    const body: Record<string, unknown> = { [options.field ?? 'token']: token };
    if (options.expiresIn !== undefined) body.expires_in = options.expiresIn;
    send(res, 200, { 'content-type': 'application/json' }, JSON.stringify(body));
  });
  tokenServer = Object.assign(server, { issued, onIssue: (_token: string) => {} });
  return tokenServer;
}

export interface BearerRegistry extends FakeServer {
  /** Tokens the registry accepts; tests may revoke. */
  accepted: Set<string>;
}

/**
 * A registry that answers 401 with a Bearer challenge unless the request carries an accepted
 * token, then hands the request to `routes`. `realm` is read on every 401 so tests can point it
 * anywhere, including untrusted hosts.
 */
export async function startBearerRegistry(realm: () => string, routes: Handler): Promise<BearerRegistry> {
  const accepted = new Set<string>();
  const server = await startServer((req, res) => {
    const token = req.headers.authorization?.replace(/^Bearer /, '');
    if (token !== undefined && accepted.has(token)) return routes(req, res);
    send(res, 401, { 'www-authenticate': `Bearer realm="${realm()}",service="fake.registry",scope="repository:x:pull"` }, '{"errors":[]}');
  });
  return Object.assign(server, { accepted });
}

/** Makes every token the token server issues acceptable to the registry. */
export function acceptIssuedTokens(tokens: TokenServer, registry: BearerRegistry): void {
  tokens.onIssue = (token) => registry.accepted.add(token);
}

export function upstreamFor(url: string, extra: Partial<UpstreamOptions['config']> = {}, responses: UpstreamResponseInfo[] = []): UpstreamRegistry {
  return new UpstreamRegistry({
    name: 'test.registry',
    config: { url, tokenRealms: [], ...extra },
    timeouts: { connectMs: 2000, headersMs: 2000, idleMs: 2000 },
    onResponse: (info) => responses.push(info),
  });
}

export const MANIFEST_BODY = '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}';
export const DIGEST = `sha256:${'a'.repeat(64)}`;

/** Answers any manifest request with a small manifest and its headers. */
export const manifestRoute: Handler = (req, res) => {
  send(res, 200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': DIGEST }, req.method === 'HEAD' ? '' : MANIFEST_BODY);
};
