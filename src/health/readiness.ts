/**
 * Whether this mirror should get traffic (`/readyz`): the configuration was loaded, the cache
 * directory is writable, and it is not shutting down. Liveness (`/healthz`) is separate and
 * stays 200 while draining, so an orchestrator stops routing to the mirror without killing it
 * before its responses in flight have finished.
 *
 * Shared backends (a replica's Redis and S3) are reported too, but do not make the mirror
 * unready: a replica keeps serving what its disk and the other backend hold while one is down
 * (issue 15 item 5), and taking every replica out of the load balancer at once would serve
 * nothing at all. `/readyz` says `degraded` and names what is unreachable; each change is logged
 * once, found by the check /readyz runs and by one every CHECK_INTERVAL_MS in the background.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';

export interface ReadinessReport {
  ready: boolean;
  /** A dependency (metadataStore, objectStore) is unreachable: serving what is still at hand. */
  degraded: boolean;
  checks: { configLoaded: boolean; cacheWritable: boolean; shuttingDown: boolean } & Record<string, boolean>;
}

/** Where dependency changes are told. */
export interface ReadinessLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

interface Dependency {
  check(): Promise<void>;
  up: boolean;
}

/** A dependency that does not answer within this long counts as unreachable (a hung Redis). */
const CHECK_TIMEOUT_MS = 1_500;
const CHECK_INTERVAL_MS = 5_000;

export class Readiness {
  private shuttingDown = false;
  readonly #dependencies = new Map<string, Dependency>();
  #timer: NodeJS.Timeout | undefined;

  /** `cacheDir` comes from a loaded, validated config: holding one means the config loaded. */
  constructor(private readonly cacheDir: string, private readonly log?: ReadinessLog) {}

  markShuttingDown(): void {
    this.shuttingDown = true;
    clearInterval(this.#timer);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Reports `name` (e.g. metadataStore) in /readyz: up while `check` resolves in time. */
  addDependency(name: string, check: () => Promise<void>): void {
    this.#dependencies.set(name, { check, up: true });
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#checkDependencies(), CHECK_INTERVAL_MS);
      this.#timer.unref();
    }
  }

  async check(): Promise<ReadinessReport> {
    const [cacheWritable, dependencies] = await Promise.all([
      access(this.cacheDir, constants.W_OK).then(() => true, () => false),
      this.#checkDependencies(),
    ]);
    const checks = { configLoaded: true, cacheWritable, shuttingDown: this.shuttingDown, ...dependencies };
    return { ready: cacheWritable && !this.shuttingDown, degraded: Object.values(dependencies).includes(false), checks };
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #checkDependencies(): Promise<Record<string, boolean>> {
    const entries = await Promise.all([...this.#dependencies].map(async ([name, dependency]) => [name, await this.#probe(name, dependency)] as const));
    return Object.fromEntries(entries);
  }

  async #probe(name: string, dependency: Dependency): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
    });
    try {
      await Promise.race([dependency.check(), late]);
      if (!dependency.up) this.log?.info({ dependency: name }, `${name} is reachable again`);
      dependency.up = true;
    } catch (error) {
      if (dependency.up) this.log?.warn({ dependency: name, err: error }, `${name} is unreachable: serving what is still at hand (/readyz says degraded)`);
      dependency.up = false;
    } finally {
      clearTimeout(timer);
    }
    return dependency.up;
  }
}
