/**
 * Request handling for the fake registry and its CDN: the pull side of the OCI
 * distribution-spec ("Pulling manifests", "Pulling blobs", "Listing Tags", "Listing Referrers").
 * Order per request: authorize, then faults, then content, so a fault never hides the auth flow
 * and a test can count "one 401, one token, one 503" precisely.
 */
import { createHmac } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import type { FakeAuth } from './fake-registry-auth.js';
import type { FakeRegistryStore } from './fake-registry-store.js';
import { type Exchange, type Fault, sendBlobBytes, sendBody, sendError, sendStatusFault, writeHead } from './fake-registry-wire.js';

export type FaultKind = 'manifest' | 'blob' | 'token' | 'tags' | 'referrers';
export type FaultTarget = FaultKind | 'all';

/** Picks the fault for one request and counts it against `times`. */
export type TakeFault = (kind: FaultKind | 'base', method: string, contentFound: boolean) => Fault | undefined;

export interface RouteContext {
  store: FakeRegistryStore;
  auth: FakeAuth;
  takeFault: TakeFault;
  cdnOrigin: string;
  cdnSecret: string;
  redirectBlobsToCdn: boolean;
  referrersApi: boolean;
  rateLimitHeaders: OutgoingHttpHeaders;
}

const CONTENT_ROUTE = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/]+)$/;
const TAGS_ROUTE = /^\/v2\/(.+)\/tags\/list$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export function registryHandler(context: RouteContext): (exchange: Exchange) => void {
  return function fakeRegistry(exchange) {
    exchange.res.setHeader('docker-distribution-api-version', 'registry/2.0');
    const { pathname } = exchange.url;
    const method = exchange.req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      sendError(exchange, 405, 'UNSUPPORTED', 'the fake registry serves pulls only');
      return;
    }
    if (pathname === '/v2/' || pathname === '/v2') return serveBase(context, exchange);
    const tags = TAGS_ROUTE.exec(pathname);
    if (tags) return serveTags(context, exchange, tags[1]!);
    const content = CONTENT_ROUTE.exec(pathname);
    const [, repo = '', kind = '', reference = ''] = content ?? [];
    const decoded = decodeURIComponent(reference);
    if (kind === 'manifests') return serveManifest(context, exchange, repo, decoded);
    if (kind === 'blobs') return serveBlob(context, exchange, repo, decoded);
    if (kind === 'referrers') return serveReferrers(context, exchange, repo, decoded);
    sendError(exchange, 404, 'NAME_UNKNOWN', `no route for ${pathname}`);
  };
}

function serveBase(context: RouteContext, exchange: Exchange): void {
  if (!context.auth.authorize(exchange, undefined)) return;
  const fault = context.takeFault('base', exchange.record.method, true);
  if (sendStatusFault(exchange, fault)) return;
  sendBody(exchange, 200, { 'content-type': 'application/json' }, Buffer.from('{}'), fault);
}

function serveManifest(context: RouteContext, exchange: Exchange, repo: string, reference: string): void {
  if (!context.auth.authorize(exchange, repo)) return;
  const manifest = context.store.manifest(repo, reference);
  const fault = context.takeFault('manifest', exchange.record.method, manifest !== undefined);
  if (sendStatusFault(exchange, fault, context.rateLimitHeaders)) return;
  if (!manifest) {
    sendError(exchange, 404, 'MANIFEST_UNKNOWN', `manifest unknown: ${repo}:${reference}`, context.rateLimitHeaders);
    return;
  }
  // No conversion: the stored media type is served whatever Accept said (the mirror must cope).
  const headers = { ...context.rateLimitHeaders, 'content-type': manifest.mediaType, 'docker-content-digest': manifest.digest, etag: `"${manifest.digest}"` };
  sendBody(exchange, 200, headers, manifest.bytes, fault);
}

function serveBlob(context: RouteContext, exchange: Exchange, repo: string, digest: string): void {
  if (!context.auth.authorize(exchange, repo)) return;
  if (!DIGEST.test(digest)) {
    sendError(exchange, 400, 'DIGEST_INVALID', `invalid digest ${digest}`);
    return;
  }
  const bytes = context.store.blob(repo, digest);
  if (context.redirectBlobsToCdn && bytes) {
    // Like Docker Hub: the registry only signs a URL; the bytes (and blob faults) live on the CDN.
    writeHead(exchange, 307, { location: `${context.cdnOrigin}/blobs/${digest}?sig=${signBlob(context.cdnSecret, digest)}`, 'content-length': 0 });
    exchange.res.end();
    return;
  }
  const fault = context.takeFault('blob', exchange.record.method, bytes !== undefined);
  if (sendStatusFault(exchange, fault)) return;
  if (!bytes) {
    sendError(exchange, 404, 'BLOB_UNKNOWN', `blob unknown to ${repo}: ${digest}`);
    return;
  }
  sendBlobBytes(exchange, bytes, { 'docker-content-digest': digest }, fault);
}

function serveTags(context: RouteContext, exchange: Exchange, repo: string): void {
  if (!context.auth.authorize(exchange, repo)) return;
  const known = context.store.hasRepository(repo);
  const fault = context.takeFault('tags', exchange.record.method, known);
  if (sendStatusFault(exchange, fault)) return;
  if (!known) {
    sendError(exchange, 404, 'NAME_UNKNOWN', `repository name not known to registry: ${repo}`);
    return;
  }
  const nText = exchange.url.searchParams.get('n');
  const n = nText === null ? undefined : Number(nText);
  if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
    sendError(exchange, 400, 'PAGINATION_NUMBER_INVALID', `invalid n=${nText}`);
    return;
  }
  const page = context.store.tagPage(repo, n, exchange.url.searchParams.get('last') ?? undefined);
  const headers: OutgoingHttpHeaders = { 'content-type': 'application/json' };
  if (page.nextLast !== undefined) headers.link = `</v2/${repo}/tags/list?n=${n}&last=${encodeURIComponent(page.nextLast)}>; rel="next"`;
  sendBody(exchange, 200, headers, Buffer.from(JSON.stringify({ name: repo, tags: page.tags })), fault);
}

function serveReferrers(context: RouteContext, exchange: Exchange, repo: string, digest: string): void {
  if (!context.referrersApi) {
    // What distribution answers for a route it does not have; clients then use the tag schema.
    writeHead(exchange, 404, { 'content-type': 'text/plain; charset=utf-8' });
    exchange.res.end(exchange.req.method === 'HEAD' ? undefined : '404 page not found\n');
    return;
  }
  if (!context.auth.authorize(exchange, repo)) return;
  if (!DIGEST.test(digest)) {
    sendError(exchange, 400, 'DIGEST_INVALID', `invalid digest ${digest}`);
    return;
  }
  const fault = context.takeFault('referrers', exchange.record.method, true);
  if (sendStatusFault(exchange, fault)) return;
  const artifactType = exchange.url.searchParams.get('artifactType') ?? undefined;
  const manifests = context.store.referrers(repo, digest, artifactType);
  const headers: OutgoingHttpHeaders = { 'content-type': OCI_INDEX };
  if (artifactType !== undefined) headers['oci-filters-applied'] = 'artifactType';
  sendBody(exchange, 200, headers, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })), fault);
}

/** The CDN: `/blobs/<digest>?sig=...`, no auth at all, only a valid signature from the registry. */
export function cdnHandler(context: RouteContext): (exchange: Exchange) => void {
  return function fakeCdn(exchange) {
    const digest = decodeURIComponent(/^\/blobs\/([^/]+)$/.exec(exchange.url.pathname)?.[1] ?? '');
    if (exchange.url.searchParams.get('sig') !== signBlob(context.cdnSecret, digest)) {
      writeHead(exchange, 403, { 'content-type': 'text/plain', 'content-length': 14 });
      exchange.res.end(exchange.req.method === 'HEAD' ? undefined : 'bad signature\n');
      return;
    }
    const bytes = context.store.blobByDigest(digest);
    const fault = context.takeFault('blob', exchange.record.method, bytes !== undefined);
    if (sendStatusFault(exchange, fault)) return;
    if (!bytes) {
      writeHead(exchange, 404, { 'content-length': 0 });
      exchange.res.end();
      return;
    }
    sendBlobBytes(exchange, bytes, {}, fault);
  };
}

function signBlob(secret: string, digest: string): string {
  return createHmac('sha256', secret).update(digest).digest('hex').slice(0, 32);
}
