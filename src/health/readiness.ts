/**
 * Whether this mirror should get traffic (`/readyz`): the configuration was loaded, the cache
 * directory is writable, and it is not shutting down. Liveness (`/healthz`) is separate and
 * stays 200 while draining, so an orchestrator stops routing to the mirror without killing it
 * before its responses in flight have finished.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';

export interface ReadinessReport {
  ready: boolean;
  checks: { configLoaded: boolean; cacheWritable: boolean; shuttingDown: boolean };
}

export class Readiness {
  private shuttingDown = false;

  /** `cacheDir` comes from a loaded, validated config: holding one means the config loaded. */
  constructor(private readonly cacheDir: string) {}

  markShuttingDown(): void {
    this.shuttingDown = true;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  async check(): Promise<ReadinessReport> {
    const cacheWritable = await access(this.cacheDir, constants.W_OK).then(() => true, () => false);
    const checks = { configLoaded: true, cacheWritable, shuttingDown: this.shuttingDown };
    return { ready: cacheWritable && !this.shuttingDown, checks };
  }
}
