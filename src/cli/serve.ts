/**
 * `registry-mirror serve`: runs the mirror until SIGTERM/SIGINT. The port is bound before the
 * cache is touched (issue 12 item 5): a second server started by mistake on the same port fails
 * with EADDRINUSE at once, having changed nothing. Requests that arrive while the cache opens
 * wait for it.
 */
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { composeMirror, type Mirror } from '../compose.js';
import { loadConfig } from '../config/load-config.js';
import type { MirrorConfig } from '../config/mirror-config.js';
import { blobBodyMethod } from '../http/send-file.js';
import { tlsServeOptions } from '../http/tls.js';
import { createLogger } from '../log.js';

export interface ServeOptions {
  config?: string;
  offline?: boolean;
}

type Logger = ReturnType<typeof createLogger>;
type FetchHandler = (request: Request, env: unknown) => Response | Promise<Response>;

/** How long in-flight responses get to finish after SIGTERM before connections are cut. */
const SHUTDOWN_GRACE_MS = 10_000;
/** Then how long cache fills whose clients are gone get before they are abandoned (temp files removed). */
const FILL_DRAIN_MS = 5_000;
/** Keep-alive connections go idle as their last response ends; they are closed as that happens. */
const IDLE_SWEEP_MS = 100;

export async function serveCommand(options: ServeOptions): Promise<void> {
  const config = await loadConfig(options.config);
  if (options.offline) config.offline = true;
  const log = createLogger(config.log.level);
  let resolveMirror!: (mirror: Mirror) => void;
  const ready = new Promise<Mirror>((resolve) => (resolveMirror = resolve));
  // Until the cache is open, requests wait for it; then they go straight to the app.
  let handle: FetchHandler = (request, env) => ready.then((mirror) => mirror.app.fetch(request, env));
  const server = serve({ fetch: (request, env) => handle(request, env), hostname: config.listen.host, port: config.listen.port, ...(await tlsServeOptions(config.tls)) });
  await listening(server, config, log);
  const mirror = await composeMirror(config, log).catch((error: unknown) => {
    log.fatal({ err: error }, 'cannot open the cache');
    process.exit(1);
  });
  handle = mirror.app.fetch;
  resolveMirror(mirror);
  const stop = (signal: string) => {
    // /readyz fails first, so load balancers stop sending while responses in flight finish.
    mirror.markShuttingDown();
    void shutdown(server, () => mirror.downloads.drain(FILL_DRAIN_MS).then(() => mirror.close()), log, signal);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

/** Resolves once the port is bound, and logs the address; a failure to bind ends the process. */
function listening(server: ServerType, config: MirrorConfig, log: Logger): Promise<void> {
  return new Promise((resolve) => {
    server.once('listening', () => {
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      // Tooling waits for this line to learn the address (port 0), so it is written at any level but silent.
      const startup = config.log.level === 'silent' ? log : log.child({}, { level: 'info' });
      startup.info({ url: `${config.tls ? 'https' : 'http'}://${host}:${address.port}`, cacheDir: config.cache.dir, offline: config.offline, blobBodies: blobBodyMethod(config), upstreams: Object.keys(config.upstreams) }, 'listening');
      resolve();
    });
    server.on('error', (error) => {
      log.fatal({ err: error }, 'server failed');
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
