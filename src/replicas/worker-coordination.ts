/**
 * Coordination among the workers of `serve --workers N` (cli/serve-primary.ts) without Redis:
 * the same fleet as replicas (fleet.ts), with leases and upstream slots kept by the primary
 * (workers/), and each worker reachable by the others at its own loopback address (it listens
 * there besides the shared port), so a worker that loses the race for a blob streams the owner's
 * download in progress exactly as a replica does.
 */
import { IpcChannel } from '../workers/ipc-channel.js';
import { IpcLeases } from '../workers/ipc-leases.js';
import { IpcSemaphore } from '../workers/ipc-semaphore.js';
import type { FleetLevel } from './fleet.js';

/** Who this worker is to the others: set by `serve` in a worker process. */
export interface WorkerIdentity {
  /** http://127.0.0.1:<port> of the worker's own listener. */
  advertiseUrl: string;
  /** The machine's secret for the internal endpoint (MIRROR_CLUSTER_SECRET, or one the primary made up). */
  secret: string;
}

export function workerCoordination(worker: WorkerIdentity | undefined): FleetLevel | undefined {
  if (!worker) return undefined;
  const channel = new IpcChannel();
  return {
    level: { name: 'workers', leases: new IpcLeases(channel), owner: worker.advertiseUrl, streams: true },
    limiter: new IpcSemaphore(channel),
    close: async () => channel.close(),
  };
}
