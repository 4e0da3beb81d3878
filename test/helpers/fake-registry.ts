/**
 * A fake upstream OCI registry on real sockets, for the mirror's unit and end-to-end tests.
 * Three servers on 127.0.0.1, ports from the OS: the registry (`url`), a Docker-Hub-like token
 * server (`tokenUrl`) and a "CDN" that serves blob bytes when the registry redirects (`cdnUrl`).
 * Every request to any of them is recorded (`requests`, `count`), and faults can be injected
 * per kind of request. It is an independent oracle: it imports nothing from `src/`.
 *
 *   const upstream = await startFakeRegistry({ auth: 'bearer', redirectBlobsToCdn: true });
 *   await pushImage(upstream, 'library/alpine', 'latest', makeImage({ layers: [1024], seed: 1 }));
 *   upstream.setFault('blob', { mode: 'truncate', times: 1 });
 *   ... exercise the mirror ...
 *   expect(upstream.count({ server: 'cdn', method: 'GET' })).toBe(2);
 *   await upstream.close();
 */
import { randomBytes } from 'node:crypto';
import type { OutgoingHttpHeaders, Server } from 'node:http';
import { type AuthMode, FakeAuth } from './fake-registry-auth.js';
import { cdnHandler, type FaultKind, type FaultTarget, registryHandler, type RouteContext } from './fake-registry-routes.js';
import { FakeRegistryStore } from './fake-registry-store.js';
import { closeServer, type Fault, listenRecording, type RequestRecord } from './fake-registry-wire.js';

export type { Fault, RequestRecord } from './fake-registry-wire.js';
export type { FaultTarget } from './fake-registry-routes.js';

export interface RateLimitHeaders {
  limit: number;
  remaining: number;
  windowSeconds: number;
  /** docker-ratelimit-source, e.g. a client IP. */
  source?: string;
}

export interface FakeRegistryOptions {
  /** Default 'none'. */
  auth?: AuthMode;
  /** Credentials accepted as Basic on `GET /token` (bearer) or on the registry itself (basic). */
  users?: Record<string, string>;
  /** Repositories starting with one of these get no access in anonymous tokens (registry answers 401). */
  privatePrefixes?: string[];
  /** `expires_in` of issued tokens; default 300. */
  tokenTtlSeconds?: number;
  /** Blob GET/HEAD answer 307 to the CDN, which serves the bytes. */
  redirectBlobsToCdn?: boolean;
  /** Serve `GET /v2/<name>/referrers/<digest>`; default false (404, like a registry without it). */
  referrersApi?: boolean;
  /** Sent on every manifest response (including 404 and fault statuses), like Docker Hub. */
  rateLimitHeaders?: RateLimitHeaders;
  /** Token `service`; default 'fake-registry'. */
  service?: string;
}

export interface CountFilter {
  server?: RequestRecord['server'];
  method?: string;
  pathIncludes?: string;
  status?: number;
}

export interface FakeRegistry {
  /** Registry origin, e.g. http://127.0.0.1:40123 (no trailing slash, no /v2). */
  url: string;
  cdnUrl: string;
  /** The token realm, `<token origin>/token`. */
  tokenUrl: string;
  service: string;
  /** Every request in arrival order; the same array for the registry's whole life. */
  readonly requests: RequestRecord[];
  count(filter?: CountFilter): number;
  resetCounts(): void;
  /** Stores a blob; with `repo`, only that repository can serve it (others 404, as in distribution). */
  addBlob(bytes: Buffer, repo?: string): string;
  deleteBlob(digest: string): void;
  putManifest(repo: string, bytes: Buffer, mediaType: string, tag?: string): string;
  setTag(repo: string, tag: string, digest: string): void;
  deleteTag(repo: string, tag: string): void;
  /** One fault per target; a new one replaces the old, null clears. 'all' applies where no specific fault is set. */
  setFault(target: FaultTarget, fault: Fault | null): void;
  /** Forgets every issued token, so the next registry request with one gets 401 invalid_token. */
  revokeTokens(): void;
  close(): Promise<void>;
}

const BODY_MODES = new Set<Fault['mode']>(['truncate', 'corrupt', 'slow']);

export async function startFakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  validateOptions(options);
  const requests: RequestRecord[] = [];
  const faults = new Map<FaultTarget, Fault>();
  const service = options.service ?? 'fake-registry';
  const authSettings = {
    mode: options.auth ?? 'none',
    users: options.users ?? {},
    privatePrefixes: options.privatePrefixes ?? [],
    tokenTtlSeconds: options.tokenTtlSeconds ?? 300,
    service,
    tokenUrl: '', // known once the token server listens
  };
  const context: RouteContext = {
    store: new FakeRegistryStore(),
    auth: new FakeAuth(authSettings),
    takeFault: faultTaker(faults),
    cdnOrigin: '', // known once the CDN listens
    cdnSecret: randomBytes(16).toString('hex'),
    redirectBlobsToCdn: options.redirectBlobsToCdn ?? false,
    referrersApi: options.referrersApi ?? false,
    rateLimitHeaders: rateLimitHeaderValues(options.rateLimitHeaders),
  };
  const servers: Server[] = [];
  try {
    const token = await listenRecording('token', requests, (exchange) => context.auth.handleTokenRequest(exchange, context.takeFault('token', exchange.record.method, true)));
    servers.push(token.server);
    authSettings.tokenUrl = `${token.origin}/token`;
    const cdn = await listenRecording('cdn', requests, cdnHandler(context));
    servers.push(cdn.server);
    context.cdnOrigin = cdn.origin;
    const registry = await listenRecording('registry', requests, registryHandler(context));
    servers.push(registry.server);
    const origins = { url: registry.origin, cdnUrl: cdn.origin, tokenUrl: authSettings.tokenUrl, service };
    return fakeRegistryApi(origins, context, { requests, faults, servers });
  } catch (error) {
    await Promise.all(servers.map(closeServer));
    throw error;
  }
}

interface LiveState {
  requests: RequestRecord[];
  faults: Map<FaultTarget, Fault>;
  servers: Server[];
}

function fakeRegistryApi(origins: Pick<FakeRegistry, 'url' | 'cdnUrl' | 'tokenUrl' | 'service'>, context: RouteContext, state: LiveState): FakeRegistry {
  const { store, auth } = context;
  const { requests, faults, servers } = state;
  return {
    ...origins,
    requests,
    count: (filter = {}) => requests.filter((record) => matches(record, filter)).length,
    resetCounts: () => void requests.splice(0),
    addBlob: (bytes, repo) => store.addBlob(bytes, repo),
    deleteBlob: (digest) => store.deleteBlob(digest),
    putManifest: (repo, bytes, mediaType, tag) => store.putManifest(repo, bytes, mediaType, tag),
    setTag: (repo, tag, digest) => store.setTag(repo, tag, digest),
    deleteTag: (repo, tag) => store.deleteTag(repo, tag),
    setFault: (target, fault) => void (fault === null ? faults.delete(target) : faults.set(target, { ...fault })),
    revokeTokens: () => auth.revokeTokens(),
    close: () => Promise.all(servers.map(closeServer)).then(() => undefined),
  };
}

/**
 * A specific fault wins over 'all'. Faults that only bend a body (truncate, corrupt, slow) are
 * neither applied nor used up by a HEAD, and only status faults apply when there is no content
 * (a 404 stays a 404), so `times: 1` means "the next real transfer".
 */
function faultTaker(faults: Map<FaultTarget, Fault>) {
  return function takeFault(kind: FaultKind | 'base', method: string, contentFound: boolean): Fault | undefined {
    const target: FaultTarget = kind !== 'base' && faults.has(kind) ? kind : 'all';
    const fault = faults.get(target);
    if (!fault) return undefined;
    if (fault.status === undefined && (!contentFound || (method === 'HEAD' && (BODY_MODES.has(fault.mode) || fault.chunked || fault.announceLength !== undefined)))) return undefined;
    if (fault.times !== undefined) {
      fault.times -= 1;
      if (fault.times <= 0) faults.delete(target);
    }
    return fault;
  };
}

function matches(record: RequestRecord, filter: CountFilter): boolean {
  return (
    (filter.server === undefined || record.server === filter.server) &&
    (filter.method === undefined || record.method === filter.method.toUpperCase()) &&
    (filter.pathIncludes === undefined || record.path.includes(filter.pathIncludes)) &&
    (filter.status === undefined || record.status === filter.status)
  );
}

/** Docker Hub's form (IETF RateLimit header draft): `ratelimit-limit: 100;w=21600`. */
function rateLimitHeaderValues(rateLimit: RateLimitHeaders | undefined): OutgoingHttpHeaders {
  if (!rateLimit) return {};
  const headers: OutgoingHttpHeaders = {
    'ratelimit-limit': `${rateLimit.limit};w=${rateLimit.windowSeconds}`,
    'ratelimit-remaining': `${rateLimit.remaining};w=${rateLimit.windowSeconds}`,
  };
  if (rateLimit.source !== undefined) headers['docker-ratelimit-source'] = rateLimit.source;
  return headers;
}

function validateOptions(options: FakeRegistryOptions): void {
  const auth = options.auth ?? 'none';
  if (!['none', 'bearer', 'basic'].includes(auth)) throw new Error(`expected auth to be 'none', 'bearer' or 'basic', got ${JSON.stringify(auth)}`);
  const ttl = options.tokenTtlSeconds;
  if (ttl !== undefined && !(Number.isFinite(ttl) && ttl > 0)) throw new Error(`expected tokenTtlSeconds to be a positive number, got ${ttl}`);
}
