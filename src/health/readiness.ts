/**
 * Whether this mirror should get traffic (`/readyz`): the configuration was loaded, the cache
 * directory is writable, the local metadata store answers (`metadata.ping()`: the SQLite file is
 * open), and it is not shutting down. A failed check is named in `failures`, with the backend
 * (`metadata store "sqlite": ...`), so an operator sees which one to look at. Liveness
 * (`/healthz`) is separate and stays 200 while draining, so an orchestrator stops routing to the
 * mirror without killing it before its responses in flight have finished.
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
  /** A shared dependency (metadataStore, objectStore) is unreachable: serving what is still at hand. */
  degraded: boolean;
  checks: { configLoaded: boolean; cacheWritable: boolean; shuttingDown: boolean } & Record<string, boolean>;
  /** What made the mirror unready, one line each; absent when ready. */
  failures?: string[];
}

/** Where dependency changes are told. */
export interface ReadinessLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

/** What readiness asks of a backend. */
export interface Pingable {
  ping(): Promise<void>;
}

interface Dependency {
  check(): Promise<void>;
  up: boolean;
}

/** A backend that does not answer within this long counts as unreachable (a hung Redis must not hang /readyz too). */
const CHECK_TIMEOUT_MS = 1_500;
const CHECK_INTERVAL_MS = 5_000;

export class Readiness {
  private shuttingDown = false;
  private metadata: { store: Pingable; backend: string } | undefined;
  readonly #dependencies = new Map<string, Dependency>();
  #timer: NodeJS.Timeout | undefined;

  /** `cacheDir` comes from a loaded, validated config: holding one means the config loaded. */
  constructor(private readonly cacheDir: string, private readonly log?: ReadinessLog) {}

  /**
   * The metadata store and its `metadata.store` name. A local one (SQLite, memory) that fails
   * makes the mirror unready; a shared one (Redis) is a dependency: degraded, still serving.
   */
  watchMetadata(store: Pingable, backend: string): void {
    if (backend === 'redis') this.addDependency('metadataStore', () => store.ping());
    else this.metadata = { store, backend };
  }

  markShuttingDown(): void {
    this.shuttingDown = true;
    clearInterval(this.#timer);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Reports `name` (e.g. objectStore) in /readyz: up while `check` resolves in time. */
  addDependency(name: string, check: () => Promise<void>): void {
    this.#dependencies.set(name, { check, up: true });
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.#checkDependencies(), CHECK_INTERVAL_MS);
      this.#timer.unref();
    }
  }

  async check(): Promise<ReadinessReport> {
    const failures: string[] = [];
    const [cacheWritable, metadataReachable, dependencies] = await Promise.all([
      access(this.cacheDir, constants.W_OK).then(() => true, (error: Error) => {
        failures.push(`cache.dir ${this.cacheDir} is not writable: ${error.message}`);
        return false;
      }),
      this.#pingMetadata().then(() => true, (error: Error) => {
        failures.push(`metadata store "${this.metadata?.backend}" does not answer: ${error.message}`);
        return false;
      }),
      this.#checkDependencies(),
    ]);
    if (this.shuttingDown) failures.push('shutting down');
    const checks = {
      configLoaded: true, cacheWritable, ...(this.metadata ? { metadataReachable } : {}), shuttingDown: this.shuttingDown, ...dependencies,
    };
    const degraded = Object.values(dependencies).includes(false);
    return failures.length === 0 ? { ready: true, degraded, checks } : { ready: false, degraded, checks, failures };
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #pingMetadata(): Promise<void> {
    if (this.metadata) await withDeadline(this.metadata.store.ping());
  }

  async #checkDependencies(): Promise<Record<string, boolean>> {
    const entries = await Promise.all([...this.#dependencies].map(async ([name, dependency]) => [name, await this.#probe(name, dependency)] as const));
    return Object.fromEntries(entries);
  }

  async #probe(name: string, dependency: Dependency): Promise<boolean> {
    try {
      await withDeadline(dependency.check());
      if (!dependency.up) this.log?.info({ dependency: name }, `${name} is reachable again`);
      dependency.up = true;
    } catch (error) {
      if (dependency.up) this.log?.warn({ dependency: name, err: error }, `${name} is unreachable: serving what is still at hand (/readyz says degraded)`);
      dependency.up = false;
    }
    return dependency.up;
  }
}

async function withDeadline(answer: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([answer, late]);
  } finally {
    clearTimeout(timer);
  }
}
