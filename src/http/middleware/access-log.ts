/**
 * One JSON access-log line per request, and the request-level metrics (requests by route and
 * status, cache hits and misses, bytes served from cache or upstream, per-repository usage).
 *
 * Blob bodies may bypass Hono (send-stream.ts writes straight to the Node ServerResponse), so
 * under @hono/node-server the line is written when the ServerResponse closes: only then are the
 * real status and the bytes actually sent known. A response that completed sent its whole
 * Content-Length; one cut short is measured by the socket's byte counter (headers included, an
 * upper bound). The request id is taken from a well-formed `X-Request-Id` or made up, and
 * returned in the same header. Nothing from request headers other than that id is logged.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { MiddlewareHandler } from 'hono';
import type { Logger } from 'pino';
import { repositoryKey, type RepositoryTarget } from '../../domain/target.js';
import type { RequestScope } from '../app-env.js';
import { accountAnswer } from '../../metrics/answer-accounting.js';
import type { MirrorMetrics } from '../../metrics/mirror-metrics.js';
import type { RepositoryUsage } from '../../metrics/repository-usage.js';
import { parseApiPath, type ApiPath } from '../api-path.js';
import { nodeResponseOf } from '../node-response.js';
import { bytesSentBySendfile } from '../send-file-zero-copy.js';

export interface AccessLogOptions {
  log: Logger;
  metrics: MirrorMetrics;
  /** Since start, for the status page. */
  usage: RepositoryUsage;
  /** Persisted, for `registry-mirror stats` (metrics/usage-recorder.ts). */
  recorder?: { record(repository: string, event: { pull: boolean; hit: boolean }): void };
}

interface Outcome {
  status: number;
  bytes: number;
  aborted: boolean;
}

/** What the log line and the metrics say of a request besides its outcome. */
export interface LoggedRequest {
  id: string;
  method: string;
  path: string;
  /** The repository, once the name was routed. */
  target: RepositoryTarget | undefined;
  /** Where the answer's bytes came from, when the registry service answered. */
  cacheResult: string | undefined;
  upstreamMs: number;
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:/+=-]{1,128}$/;
/**
 * 'close' listeners one streamed blob response carries: Node's pipeline (five), @hono/node-server
 * (one) and the mirror's own (client gone, send watchdog, stream end, this log): eleven, fixed
 * per response. Above EventEmitter's default of 10, Node prints a warning line that is not JSON.
 */
const RESPONSE_MAX_LISTENERS = 16;
const OPERATIONS_ROUTES: Record<string, string> = { '/': 'status-page', '/healthz': 'healthz', '/readyz': 'readyz', '/metrics': 'metrics', '/api/status': 'status' };

export function accessLog(options: AccessLogOptions): MiddlewareHandler {
  return async function accessLog(c, next) {
    const scope: RequestScope = { id: requestIdOf(c.req.header('x-request-id')), upstreamMs: 0 };
    const started = performance.now();
    const describe = (): LoggedRequest => ({ id: scope.id, method: c.req.method, path: c.req.path, target: c.get('target'), cacheResult: c.get('cacheResult'), upstreamMs: scope.upstreamMs });
    const outgoing = nodeResponseOf(c);
    // Set on the ServerResponse too: streamed blob responses never pass back through Hono.
    outgoing?.setHeader('X-Request-Id', scope.id);
    if (outgoing) recordWhenClosed(options, outgoing, describe, started);
    c.set('requestScope', scope);
    await next();
    if (c.res.headers.get('x-hono-already-sent') === null) c.res.headers.set('X-Request-Id', scope.id);
    if (outgoing) return;
    const bytes = declaredBodyBytes(c.req.method, c.res.status, c.res.headers.get('content-length'));
    record(options, describe(), performance.now() - started, { status: c.res.status, bytes, aborted: false });
  };
}

/** A well-formed `X-Request-Id` from the client, or a new one. */
export function requestIdOf(given: string | string[] | undefined): string {
  return typeof given === 'string' && REQUEST_ID_PATTERN.test(given) ? given : randomUUID();
}

/**
 * Logs and counts the answer on `outgoing` once it closes: only then are the real status and the
 * bytes actually sent known. Called before the answer is written: its bytes are counted from here.
 */
export function recordWhenClosed(options: AccessLogOptions, outgoing: ServerResponse, describe: () => LoggedRequest, started = performance.now()): void {
  outgoing.setMaxListeners(RESPONSE_MAX_LISTENERS);
  const socket = outgoing.socket ?? undefined;
  const socketBytesAtStart = socket?.bytesWritten ?? 0;
  // Bytes sent by sendfile(2) never pass through the socket object, which cannot count them.
  const onClose = () => {
    const request = describe();
    record(options, request, performance.now() - started, measure(request.method, outgoing, (socket?.bytesWritten ?? 0) - socketBytesAtStart + bytesSentBySendfile(outgoing)));
  };
  if (outgoing.closed) onClose();
  else outgoing.once('close', onClose);
}

function measure(method: string, outgoing: ServerResponse, socketBytes: number): Outcome {
  const aborted = !outgoing.writableFinished;
  const declared = declaredBodyBytes(method, outgoing.statusCode, outgoing.getHeader('content-length'));
  return { status: outgoing.statusCode, bytes: aborted || Number.isNaN(declared) ? Math.max(0, socketBytes) : declared, aborted };
}

/** Body bytes of a response that was sent whole; NaN when it declared no length. */
function declaredBodyBytes(method: string, status: number, contentLength: unknown): number {
  if (method === 'HEAD' || status === 204 || status === 304) return 0;
  const value = Array.isArray(contentLength) ? contentLength[0] : contentLength;
  return value === undefined || value === null ? NaN : Number(value);
}

function record(options: AccessLogOptions, { id, method, path, target, cacheResult, upstreamMs }: LoggedRequest, durationMs: number, outcome: Outcome): void {
  const api = apiPathOf(path);
  const route = routeName(path, api);
  const bytes = Number.isNaN(outcome.bytes) ? 0 : outcome.bytes;
  const { metrics, usage, recorder } = options;
  metrics.request(route, method, outcome.status);
  const accounted = api && accountAnswer({ endpoint: api.endpoint, method, status: outcome.status, reference: api.reference, origin: cacheResult });
  if (accounted) {
    metrics.cacheResult(accounted.kind, accounted.origin);
    metrics.served(accounted.hit ? 'cache' : 'upstream', bytes);
    if (target) {
      usage.record(repositoryKey(target), { pull: accounted.pull, hit: accounted.hit, bytes });
      recorder?.record(repositoryKey(target), accounted);
    }
  }
  const line = {
    requestId: id,
    method,
    path: path.slice(0, 512),
    route,
    status: outcome.status,
    bytes,
    cache: cacheResult,
    upstream: target?.kind === 'proxy' ? target.upstream : undefined,
    upstreamMs: Math.round(upstreamMs),
    durationMs: Math.round(durationMs),
    aborted: outcome.aborted || undefined,
  };
  // Probes and the status page's polling would drown the real traffic at info.
  if (route in OPERATIONS_BY_ROUTE) options.log.debug(line, 'request');
  else options.log.info(line, 'request');
}

const OPERATIONS_BY_ROUTE = Object.fromEntries(Object.values(OPERATIONS_ROUTES).map((route) => [route, true]));

/** A bounded label: the API endpoint or operations route, never the path itself. */
export function routeName(path: string, api = apiPathOf(path)): string {
  if (path === '/v2' || path === '/v2/') return 'base';
  if (path.startsWith('/v2/')) return api?.endpoint ?? 'unknown';
  return OPERATIONS_ROUTES[path] ?? 'other';
}

function apiPathOf(path: string): ApiPath | undefined {
  if (!path.startsWith('/v2/')) return undefined;
  try {
    return parseApiPath(path);
  } catch {
    return undefined;
  }
}
