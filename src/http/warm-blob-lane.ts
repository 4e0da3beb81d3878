/**
 * The warm-blob lane: a GET of a whole blob this process holds, the request a fleet sends most,
 * answered from Node's request listener without passing through Hono (issue 16 item 4). Through
 * the app, such a response cost about 1.2 ms of CPU, against 0.75 ms for Node's HTTP server
 * sending the same file and nothing else; most of the difference was building the Request and
 * the Context and running the middleware chain and its promises. Through the lane it costs about
 * 0.76 ms (docs/benchmarks.md, "the warm-blob lane").
 *
 * The lane takes a request only when it knows the app's answer, and gives the same one: the
 * status, the headers every answer carries (API version, nosniff, X-Request-Id) and the blob's,
 * the bytes by sendfile (send-file.ts), the send watchdog, the access-log line and the metrics
 * (access-log.ts). Everything else goes to the app, untouched:
 *   - any method but GET, an absolute-form target, a query other than one plain `ns`, a Host the
 *     adapter would refuse, a path that is not a valid blob path (the app answers the error);
 *   - a Range, If-Range or If-None-Match (entity-tags.ts), a request from nginx in accel mode;
 *   - client authentication configured (every request must authenticate in the app): there is
 *     no lane then (app.ts);
 *   - a hosted name, a name the access rules do not let anonymous clients pull;
 *   - a blob the registry service cannot answer from memory (RegistryService.blobHeldInMemory:
 *     not held, or the access policy would have to look or ask), and an answer that turns out
 *     not to be a cached file after all (evicted meanwhile, an object store's redirect).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDigest, type Digest } from '../domain/digest.js';
import type { ProxiedTarget } from '../domain/target.js';
import type { AccessPolicy } from '../hosted/access-rules.js';
import type { RegistryService } from '../pull-through/registry-service.js';
import type { UpstreamRouter } from '../upstream/upstream-router.js';
import { ACCEL_REQUEST_HEADER } from './accel-redirect.js';
import { parseApiPath } from './api-path.js';
import { API_VERSION_HEADER } from './middleware/api-version.js';
import { recordWhenClosed, requestIdOf, type AccessLogOptions } from './middleware/access-log.js';
import { NOSNIFF_HEADER } from './middleware/nosniff.js';
import { requireAccess } from './repository-access.js';
import { blobHeaders } from './routes/blobs.js';
import { sendFileRange } from './send-file.js';
import { SendWatchdog } from './send-watchdog.js';

/**
 * Answers the request and returns true, or returns false having done nothing. It may also hand
 * the request to `toApp` later, before anything was written.
 */
export type RequestLane = (incoming: IncomingMessage, outgoing: ServerResponse, toApp: () => void) => boolean;

export interface WarmBlobLaneOptions {
  /** The service anonymous clients get: the guarded one when there is an access policy (app.ts). */
  registry: RegistryService;
  router: UpstreamRouter;
  /** Access rules (hosted), checked as the app checks them. */
  access?: AccessPolicy | undefined;
  accessLog: AccessLogOptions;
  /** Config `sendfile`. */
  sendfile: boolean;
  /** Config `listen.sendTimeoutSeconds`, in ms. */
  sendTimeoutMs: number;
}

/** A query the lane reads as the app does: nothing, or one `ns` with nothing to decode. */
const PLAIN_NS_QUERY = /^ns=([A-Za-z0-9.:[\]-]+)$/;
/** How many Host values the lane remembers the adapter's verdict on (hostBuildsUrl). */
const HOSTS_SEEN_LIMIT = 256;

export function warmBlobLane(options: WarmBlobLaneOptions): RequestLane {
  const { registry, router, access, accessLog, sendfile } = options;
  if (!registry.blobHeldInMemory) return () => false;
  const watchdog = new SendWatchdog(options.sendTimeoutMs);
  const hosts = new Map<string, boolean>();

  return function warmBlobs(incoming, outgoing, toApp) {
    const wanted = heldBlobRequest(incoming, router, hosts);
    if (!wanted) return false;
    const { target, digest, path } = wanted;
    if (access && !anonymousMayPull(access, target)) return false;
    if (!registry.blobHeldInMemory!(target, digest)) return false;
    const started = performance.now();
    registry.blob(target, digest).then(
      (answer) => {
        const body = answer.body;
        if (body.kind !== 'file' || answer.origin !== 'cache' || answer.size === undefined || answer.size === 0) {
          answer.release();
          return toApp();
        }
        const id = requestIdOf(incoming.headers['x-request-id']);
        try {
          recordWhenClosed(accessLog, outgoing, () => ({ id, method: 'GET', path, target, cacheResult: answer.origin, upstreamMs: 0 }), started);
          watchdog.watch(outgoing);
          // Set, not only written: the access log reads the Content-Length back (getHeader), as the app's middleware sets these.
          for (const [name, value] of EVERY_ANSWER_HEADERS) outgoing.setHeader(name, value);
          outgoing.setHeader('X-Request-Id', id);
          outgoing.writeHead(200, { ...blobHeaders(digest), 'Content-Length': String(answer.size) });
        } catch (error) {
          // As the app's onError logs what is not a MirrorError; the client sees the answer cut short, never complete.
          accessLog.log.error({ err: error, method: 'GET', path }, 'request failed');
          answer.release();
          outgoing.destroy(error as Error);
          return;
        }
        sendFileRange(outgoing, { path: body.path, start: 0, end: answer.size - 1, done: answer.release, sendfile });
      },
      () => toApp(),
    );
    return true;
  };
}

const EVERY_ANSWER_HEADERS = Object.entries({ ...API_VERSION_HEADER, ...NOSNIFF_HEADER });

interface BlobRequest {
  target: ProxiedTarget;
  digest: Digest;
  /** The path as sent, for the access log. */
  path: string;
}

/** A GET of a whole blob of a proxied repository, read as the app reads it; undefined for anything else. */
function heldBlobRequest(incoming: IncomingMessage, router: UpstreamRouter, hosts: Map<string, boolean>): BlobRequest | undefined {
  const { method, url, headers } = incoming;
  if (method !== 'GET' || !url?.startsWith('/v2/')) return undefined;
  if (headers.range !== undefined || headers['if-range'] !== undefined || headers['if-none-match'] !== undefined || headers[ACCEL_REQUEST_HEADER] !== undefined) return undefined;
  if (!hostBuildsUrl(headers.host, hosts)) return undefined;
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  const ns = queryAt === -1 ? undefined : PLAIN_NS_QUERY.exec(url.slice(queryAt + 1))?.[1];
  if (queryAt !== -1 && ns === undefined) return undefined;
  try {
    const api = parseApiPath(path);
    if (api.endpoint !== 'blobs') return undefined;
    const target = router.target(api.name, ns);
    return target.kind === 'proxy' ? { target, digest: parseDigest(api.reference), path } : undefined;
  } catch {
    // The app answers it, with the error.
    return undefined;
  }
}

function anonymousMayPull(access: AccessPolicy, target: ProxiedTarget): boolean {
  try {
    requireAccess(access, undefined, target, 'pull');
    return true;
  } catch {
    return false;
  }
}

/**
 * What @hono/node-server's newRequest accepts (a Host that is a URL's host, as the URL parser
 * keeps it), remembered for the few hosts a fleet sends; past the limit, nothing more is kept.
 */
function hostBuildsUrl(host: string | undefined, seen: Map<string, boolean>): boolean {
  if (!host) return false;
  const known = seen.get(host);
  if (known !== undefined) return known;
  let builds: boolean;
  try {
    const { hostname } = new URL(`http://${host}/`);
    builds = hostname.length === host.length || hostname === host.replace(/:\d+$/, '');
  } catch {
    builds = false;
  }
  if (seen.size < HOSTS_SEEN_LIMIT) seen.set(host, builds);
  return builds;
}
