/**
 * The online housekeeping of hosted repositories while `serve` runs: garbage collection every
 * `hosted.gc.intervalSeconds` (0: only `registry-mirror gc`), and the expiry of abandoned
 * upload sessions, which also runs on its own when collection is off. Runs never overlap, a
 * failure is logged and the next run comes as planned, and timers never keep the process alive.
 */
import type { GarbageCollectReport } from './garbage-collect.js';

export interface MaintenanceLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface HostedMaintenanceOptions {
  collect(): Promise<GarbageCollectReport>;
  expireUploads(): Promise<number>;
  /** 0: no periodic collection. */
  gcIntervalMs: number;
  uploadExpiryMs: number;
  log: MaintenanceLog;
}

/** Upload sessions are looked at this often at most (and at least twice per expiry time). */
const UPLOAD_CHECK_MS = 10 * 60 * 1000;

export class HostedMaintenance {
  readonly #timers: NodeJS.Timeout[] = [];
  #running: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(private readonly options: HostedMaintenanceOptions) {}

  start(): void {
    const { gcIntervalMs, uploadExpiryMs } = this.options;
    if (gcIntervalMs > 0) this.#every(gcIntervalMs, () => this.collect());
    this.#every(Math.max(1000, Math.min(UPLOAD_CHECK_MS, uploadExpiryMs / 2)), () => this.#expireUploads());
  }

  /** One garbage collection now, after any run in progress. */
  collect(): Promise<GarbageCollectReport | undefined> {
    return this.#serialized(async () => {
      const report = await this.options.collect();
      if (report.manifestsRemoved + report.blobsDeleted + report.blobsReleased + report.uploadsExpired > 0) this.options.log.info({ ...report }, 'garbage collection');
      return report;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    await this.#running;
  }

  #expireUploads(): Promise<unknown> {
    return this.#serialized(async () => {
      const expired = await this.options.expireUploads();
      if (expired > 0) this.options.log.info({ uploadsExpired: expired }, 'expired abandoned uploads');
    });
  }

  #every(ms: number, work: () => Promise<unknown>): void {
    const timer = setInterval(() => void work(), ms);
    timer.unref();
    this.#timers.push(timer);
  }

  #serialized<T>(work: () => Promise<T>): Promise<T | undefined> {
    const run = this.#running.then(async () => {
      if (this.#closed) return undefined;
      try {
        return await work();
      } catch (error) {
        this.options.log.warn({ err: error }, 'hosted housekeeping failed');
        return undefined;
      }
    });
    this.#running = run;
    return run;
  }
}
