/**
 * One serving process of `registry-mirror serve`: the only process with `--workers 1`, or one of
 * the workers of serve-primary.ts. It binds the port before the cache is touched (issue 12 item
 * 5), so a second server started by mistake on the same port fails with EADDRINUSE at once,
 * having changed nothing; requests that arrive while the cache opens wait for it.
 */
import cluster from 'node:cluster';
import type { ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Mirror } from '../compose.js';
import { loadConfig } from '../config/load-config.js';
import type { MirrorConfig } from '../config/mirror-config.js';
import { bodyHeapStatus } from '../http/body-heap.js';
import { createMirrorHttpServer } from '../http/http-server.js';
import { tlsServeOptions } from '../http/tls.js';
import type { RequestLane } from '../http/warm-blob-lane.js';
import { createLogger } from '../log.js';
import type { WorkerIdentity } from '../replicas/worker-coordination.js';
import { warmHttpClient } from '../upstream/warm-http-client.js';
import { applyServingV8Flags } from './serving-v8-flags.js';
import { announceListening, tellPrimaryReady, workersSecret, WORKERS_SECRET_ENV, type ServeOptions } from './serve.js';

type FetchHandler = (request: Request, env: unknown) => Response | Promise<Response>;

/** How long in-flight responses get to finish after SIGTERM before connections are cut. */
const SHUTDOWN_GRACE_MS = 10_000;
/** Then how long cache fills whose clients are gone get before they are abandoned (temp files removed). */
const FILL_DRAIN_MS = 5_000;
/** Keep-alive connections go idle as their last response ends; they are closed as that happens. */
const IDLE_SWEEP_MS = 100;

export async function serveProcess(options: ServeOptions, isWorker: boolean): Promise<void> {
  applyServingV8Flags();
  const config = await loadConfig(options.config);
  if (options.offline) config.offline = true;
  // Workers share stdout: each line says which one wrote it.
  const log = isWorker ? createLogger(config.log.level).child({ worker: cluster.worker?.id }) : createLogger(config.log.level);
  if (bodyHeapStatus.tuned) log.info('upload bodies reuse freed heap pages (malloc trim threshold raised while they stream)');
  else log.info({ reason: bodyHeapStatus.reason }, 'upload bodies use the default malloc trim threshold');
  let resolveMirror!: (mirror: Mirror) => void;
  const ready = new Promise<Mirror>((resolve) => (resolveMirror = resolve));
  // Until the cache is open, requests wait for it; then they go straight to the app.
  let handle: FetchHandler = (request, env) => ready.then((mirror) => mirror.app.fetch(request, env));
  const fetch: FetchHandler = (request, env) => handle(request, env);
  // The warm-blob lane joins once the cache is open (http/warm-blob-lane.ts).
  let lane: RequestLane | undefined;
  const laneOnceOpen: RequestLane = (incoming, outgoing, toApp) => lane?.(incoming, outgoing, toApp) ?? false;
  const server = createMirrorHttpServer(fetch, { defaultHost: config.listen.host, tls: await tlsServeOptions(config.tls), lane: laneOnceOpen });
  server.listen(config.listen.port, config.listen.host);
  // A worker's port is the primary's; the primary says where it listens, once every worker does.
  await listening(server, config, log, !isWorker);
  const internal = isWorker ? await listenOnLoopback(fetch) : undefined;
  const worker: WorkerIdentity | undefined = internal && { advertiseUrl: internal.url, secret: process.env[WORKERS_SECRET_ENV] ?? workersSecret() };
  // undici's parser is compiled while the cache opens, not on the first miss (its first byte).
  void warmHttpClient().then((warmed) => (warmed ? log.info('compiled the HTTP parser') : log.warn('could not compile the HTTP parser ahead: the first upstream request will')));
  // Loaded here, not at the top: a `--workers` primary never composes a mirror and stays small.
  const { composeMirror } = await import('../compose.js');
  const mirror = await composeMirror(config, log, { worker, whenRedisUnreachable: 'reconnect' }).catch((error: unknown) => {
    log.fatal({ err: error }, 'cannot open the cache');
    process.exit(1);
  });
  handle = mirror.app.fetch;
  lane = mirror.lane;
  resolveMirror(mirror);
  if (isWorker) tellPrimaryReady();
  // As distribution's proxy does at start: the first miss then asks for its token at once.
  if (!config.offline) void mirror.learnUpstreamChallenges().then((names) => log.debug({ upstreams: names }, 'learned the upstreams\' authentication challenges'));
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    // /readyz fails first, so load balancers stop sending while responses in flight finish.
    mirror.markShuttingDown();
    internal?.server.close();
    void shutdown(server, () => mirror.downloads.drain(FILL_DRAIN_MS).then(() => mirror.close()), log, signal);
  };
  // A worker may get a signal twice (from the terminal's process group and from its primary).
  const on = isWorker ? process.on.bind(process) : process.once.bind(process);
  on('SIGTERM', stop);
  on('SIGINT', stop);
}

/**
 * A worker's own listener on 127.0.0.1, beside the shared port: the other workers reach it
 * there. `exclusive` keeps the cluster module from sharing it (every worker asking for port 0
 * would otherwise be handed the same one).
 */
function listenOnLoopback(fetch: FetchHandler): Promise<{ server: ServerType; url: string }> {
  const server = createMirrorHttpServer(fetch, { defaultHost: '127.0.0.1' });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
    });
  });
}

/** Resolves once the port is bound, and logs the address (`announce`); a failure to bind ends the process. */
function listening(server: ServerType, config: MirrorConfig, log: Logger, announce: boolean): Promise<void> {
  return new Promise((resolve) => {
    let bound = false;
    server.once('listening', () => {
      bound = true;
      const address = server.address() as AddressInfo;
      if (announce) announceListening(log, config, address);
      resolve();
    });
    server.on('error', (error) => {
      // Before it is bound, the error is the address's (in use, not this machine's, a name that does not resolve).
      if (bound) log.fatal({ err: error }, 'server failed');
      else log.fatal({ err: error }, `cannot listen on ${config.listen.host}:${config.listen.port}: change listen.host or listen.port`);
      process.exit(1);
    });
  });
}

async function shutdown(server: ServerType, closeMirror: () => Promise<void>, log: Logger, signal: string): Promise<void> {
  log.info({ signal }, 'shutting down');
  const forced = setTimeout(() => {
    log.warn('grace period over: closing remaining connections');
    (server as import('node:http').Server).closeAllConnections?.();
  }, SHUTDOWN_GRACE_MS);
  forced.unref();
  const sweep = setInterval(() => (server as import('node:http').Server).closeIdleConnections?.(), IDLE_SWEEP_MS);
  (server as import('node:http').Server).closeIdleConnections?.();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  clearInterval(sweep);
  await closeMirror();
  log.info('stopped');
  process.exit(0);
}
