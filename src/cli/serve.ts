/**
 * `registry-mirror serve`: runs the mirror until SIGTERM/SIGINT, in one process
 * (serve-process.ts) or, with `--workers N` (default: the number of cores), in N such processes
 * on the one port through Node's cluster module (serve-primary.ts); each worker also listens on a
 * loopback port of its own, where the others stream its blob downloads in progress
 * (replicas/worker-coordination.ts).
 */
import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { MirrorConfig } from '../config/mirror-config.js';
import { blobBodyMethod } from '../http/send-file.js';
import { CLUSTER_SECRET_ENV } from '../replicas/cluster-auth.js';
import { UsageError } from './usage-error.js';

export interface ServeOptions {
  config?: string;
  offline?: boolean;
  /** `--workers`: processes sharing the port; default the number of cores. */
  workers?: string;
}

/** The primary hands its workers the machine's secret for their internal endpoint in this variable. */
export const WORKERS_SECRET_ENV = 'MIRROR_WORKERS_SECRET';

/** What a worker tells its primary once it serves: listening, and its cache open (serve-primary.ts). */
export const WORKER_READY_MESSAGE = { kind: 'registry-mirror:worker-ready' } as const;

/**
 * Tells the primary this worker serves. A primary killed while the worker started makes the
 * message fail (EPIPE, or the channel closed): not an error to throw, since the cluster module
 * ends a worker whose channel closes, quietly.
 */
export function tellPrimaryReady(): void {
  process.send?.(WORKER_READY_MESSAGE, undefined, {}, () => {});
}

export function isWorkerReady(message: unknown): boolean {
  return typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === WORKER_READY_MESSAGE.kind;
}

export async function serveCommand(options: ServeOptions): Promise<void> {
  const workers = workerCount(options.workers);
  if (workers > 1 && cluster.isPrimary) {
    const { servePrimary } = await import('./serve-primary.js');
    return servePrimary(options, workers);
  }
  // The HTTP stack, the upstream client and the cache are loaded only here: a primary carries
  // none of them (its RSS counts in the machine's budget, issue 13).
  const { serveProcess } = await import('./serve-process.js');
  return serveProcess(options, workers > 1);
}

function workerCount(value: string | undefined): number {
  if (value === undefined) return availableParallelism();
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > 1024) throw new UsageError(`--workers: expected a whole number from 1 to 1024, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** The secret for the workers' internal endpoint: the fleet's, or one the primary made up for this machine. */
export function workersSecret(env: NodeJS.ProcessEnv = process.env): string {
  return env[CLUSTER_SECRET_ENV] || randomBytes(32).toString('hex');
}

/** The `listening` line: tooling waits for it to learn the address (port 0), so it is written at any level but silent. */
export function announceListening(log: Logger, config: MirrorConfig, address: { address: string; port: number; family?: string }, fields: Record<string, unknown> = {}): void {
  const host = address.family === 'IPv6' || address.address.includes(':') ? `[${address.address}]` : address.address;
  const startup = config.log.level === 'silent' ? log : log.child({}, { level: 'info' });
  startup.info({ url: `${config.tls ? 'https' : 'http'}://${host}:${address.port}`, cacheDir: config.cache.dir, offline: config.offline, blobBodies: blobBodyMethod(config), upstreams: Object.keys(config.upstreams), ...fields }, 'listening');
}
