/**
 * The primary process of `serve --workers N` (issue 15 item 9): Node 20 has no `reusePort`, so
 * N workers share the port through the cluster module (the primary accepts connections and hands
 * them out in turn). The primary serves no request itself; it
 *
 *   - keeps the workers' leases and upstream slots (workers/primary-coordinator.ts), so one
 *     upstream download runs per blob on the machine and the others stream it;
 *   - says `listening` once every worker listens (the line tooling waits for);
 *   - starts another worker when one dies (ending the dead one's leases at once), and gives up
 *     with exit 1 if a worker dies before it was ever ready, listening with its cache open (a bad
 *     port, a bad cache directory, an htpasswd file it cannot read): restarting it would fail the
 *     same way, forever;
 *   - on SIGTERM/SIGINT passes the signal on, waits for every worker's graceful shutdown, exits 0.
 *
 * If the primary itself is killed, the workers exit too (the cluster module does that when their
 * IPC channel closes).
 */
import cluster, { type Worker } from 'node:cluster';
import { loadConfig } from '../config/load-config.js';
import { createLogger } from '../log.js';
import { PrimaryCoordinator } from '../workers/primary-coordinator.js';
import { announceListening, isWorkerReady, workersSecret, WORKERS_SECRET_ENV, type ServeOptions } from './serve.js';

/** A worker that dies is replaced after this long (a crash loop does not spin the CPU). */
const RESPAWN_DELAY_MS = 1_000;

export async function servePrimary(options: ServeOptions, count: number): Promise<void> {
  // Configuration errors end the command here, before any worker starts.
  const config = await loadConfig(options.config);
  if (options.offline) config.offline = true;
  const log = createLogger(config.log.level);
  const coordinator = new PrimaryCoordinator(config.fetch.maxConcurrent);
  const env = { [WORKERS_SECRET_ENV]: workersSecret() };
  const listened = new Set<number>();
  const ready = new Set<number>();
  let announced = false;
  let stopping = false;

  const fork = (): Worker => {
    const worker = cluster.fork(env);
    coordinator.attach(worker);
    worker.on('message', (message: unknown) => {
      if (isWorkerReady(message)) ready.add(worker.id);
    });
    worker.once('exit', (code, signal) => onExit(worker, code, signal));
    return worker;
  };
  const onExit = (worker: Worker, code: number | null, signal: string | null) => {
    listened.delete(worker.id);
    const wasReady = ready.delete(worker.id);
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    if (!wasReady) {
      log.fatal({ pid: worker.process.pid, code, signal }, 'a worker stopped before it was ready: stopping the others');
      stopping = true;
      for (const other of Object.values(cluster.workers ?? {})) other?.process.kill('SIGKILL');
      process.exit(1);
    }
    log.warn({ pid: worker.process.pid, code, signal }, 'a worker died: starting another');
    setTimeout(() => !stopping && fork(), RESPAWN_DELAY_MS);
  };

  cluster.on('listening', (worker, address) => {
    listened.add(worker.id);
    if (announced || listened.size < count) return;
    announced = true;
    announceListening(log, config, { address: address.address ?? config.listen.host, port: address.port, family: address.addressType === 6 ? 'IPv6' : 'IPv4' }, { workers: count });
  });
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, workers: count }, 'shutting down the workers');
    const workers = Object.values(cluster.workers ?? {});
    if (workers.length === 0) process.exit(0);
    for (const worker of workers) worker?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  for (let index = 0; index < count; index++) fork();
}
