/**
 * Whether this mirror should get traffic (`/readyz`): the configuration was loaded, the cache
 * directory is writable, the metadata store answers (`metadata.ping()`: the SQLite file is
 * open, Redis replies), and it is not shutting down. A failed check is named in `failures`, with
 * the backend (`metadata store "redis": ...`), so an operator sees which one to look at.
 * Liveness (`/healthz`) is separate and stays 200 while draining, so an orchestrator stops
 * routing to the mirror without killing it before its responses in flight have finished.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';

export interface ReadinessReport {
  ready: boolean;
  checks: { configLoaded: boolean; cacheWritable: boolean; metadataReachable: boolean; shuttingDown: boolean };
  /** What failed, one line each; absent when ready. */
  failures?: string[];
}

/** What readiness asks of the metadata store. */
export interface Pingable {
  ping(): Promise<void>;
}

/** A ping slower than this counts as a failure: a hung Redis must not hang /readyz too. */
const PING_DEADLINE_MS = 2_000;

export class Readiness {
  private shuttingDown = false;
  private metadata: { store: Pingable; backend: string } | undefined;

  /** `cacheDir` comes from a loaded, validated config: holding one means the config loaded. */
  constructor(private readonly cacheDir: string) {}

  /** The metadata store to ping, and its `metadata.store` name for the report. */
  watchMetadata(store: Pingable, backend: string): void {
    this.metadata = { store, backend };
  }

  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  async check(): Promise<ReadinessReport> {
    const failures: string[] = [];
    const cacheWritable = await access(this.cacheDir, constants.W_OK).then(() => true, (error: Error) => {
      failures.push(`cache.dir ${this.cacheDir} is not writable: ${error.message}`);
      return false;
    });
    const metadataReachable = await this.pingMetadata().then(() => true, (error: Error) => {
      failures.push(`metadata store "${this.metadata?.backend}" does not answer: ${error.message}`);
      return false;
    });
    if (this.shuttingDown) failures.push('shutting down');
    const checks = { configLoaded: true, cacheWritable, metadataReachable, shuttingDown: this.shuttingDown };
    return failures.length === 0 ? { ready: true, checks } : { ready: false, checks, failures };
  }

  private async pingMetadata(): Promise<void> {
    if (!this.metadata) return;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${PING_DEADLINE_MS} ms`)), PING_DEADLINE_MS);
    });
    try {
      await Promise.race([this.metadata.store.ping(), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}
