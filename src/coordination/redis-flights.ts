/**
 * Flights across processes (the contract in flights.ts): callers in one process share one flight
 * through a LocalFlights; across processes a Redis lease per key (redis-leases.ts) picks the one
 * owner that runs `work`. A flight that finds the lease held elsewhere waits for that flight to
 * end (its release message, or a poll that finds the lease gone), then:
 *
 * - the owner succeeded: runs `work` itself, which finds the shared state the owner left (the
 *   content store, the metadata store) and returns it cheaply; such late runs go in parallel;
 * - the owner failed, or vanished (killed: its lease expired within its TTL): tries to take the
 *   lease, so exactly one process runs the work again and the others keep waiting.
 *
 * The flight's deadline covers the waiting: its signal ends the wait. When Redis cannot be
 * reached (or stops answering in the middle of a wait), a flight runs `work` coordinated within
 * its process only, logged once per outage; one flight a second tries Redis again (the others
 * do not wait for a hung Redis), so coordination resumes within a second of Redis being back.
 */
import { CoordinationUnavailableError, assertIntegerOption, assertTextOption } from './coordination-errors.js';
import { LocalFlights, type FlightOptions, type FlightWork, type Flights, type Landing } from './flights.js';
import { OutageNotice, type CoordinationLog } from './outage-notice.js';
import type { Lease, LeaseClaim, LeaseWaitResult, Leases } from './redis-leases.js';

export interface RedisFlightsOptions {
  /** RedisLeases across replicas; any Leases will do (the workers of one machine use the primary's). */
  leases: Leases;
  /** Where this process can be reached, stored in its leases: `cluster.advertiseUrl`. */
  owner: string;
  /** A killed owner's flight is taken over after at most this long; default 5,000 ms. Refreshed every third of it. */
  leaseTtlMs?: number;
  log?: CoordinationLog;
}

type HeldUntil<T> = ((value: T) => unknown) | undefined;

export class RedisFlights implements Flights {
  readonly #local = new LocalFlights();
  readonly #leases: Leases;
  readonly #owner: string;
  readonly #leaseTtlMs: number;
  readonly #outage: OutageNotice;

  constructor(options: RedisFlightsOptions) {
    assertTextOption('owner', options.owner);
    this.#leaseTtlMs = options.leaseTtlMs ?? 5_000;
    assertIntegerOption('leaseTtlMs', this.#leaseTtlMs, 30);
    this.#leases = options.leases;
    this.#owner = options.owner;
    this.#outage = new OutageNotice('flights', 'each process runs its own flights', options.log);
  }

  /** Flights under way in this process (for tests and metrics). */
  get size(): number {
    return this.#local.size;
  }

  run<T>(key: string, work: FlightWork<T>, options: FlightOptions): Promise<T> {
    return this.#local.run(key, (signal) => this.#coordinate(key, work, signal, undefined), options);
  }

  hold<T extends Landing>(key: string, work: FlightWork<T>, options: FlightOptions): Promise<T> {
    return this.#local.hold(key, (signal) => this.#coordinate(key, work, signal, (value: T) => value.settled), options);
  }

  async #coordinate<T>(key: string, work: FlightWork<T>, signal: AbortSignal, heldUntil: HeldUntil<T>): Promise<T> {
    for (;;) {
      signal.throwIfAborted();
      const claim = await this.#claim(key);
      if (claim === undefined) return work(signal);
      if (claim.acquired) return this.#own(claim.lease, work, signal, heldUntil);
      const ended = await this.#awaitOwner(key, claim.value, signal);
      if (ended === 'ok' || ended === 'unavailable') return work(signal);
    }
  }

  /** The lease, or undefined when Redis cannot be reached (the flight then runs here alone). */
  async #claim(key: string): Promise<LeaseClaim | undefined> {
    if (!this.#outage.shouldTryRedis()) return undefined;
    try {
      const claim = await this.#leases.acquire(key, this.#owner, this.#leaseTtlMs);
      this.#outage.noticeUp();
      return claim;
    } catch (error) {
      if (!(error instanceof CoordinationUnavailableError)) throw error;
      this.#outage.noticeDown(error);
      return undefined;
    }
  }

  async #awaitOwner(key: string, observed: string, signal: AbortSignal): Promise<LeaseWaitResult | 'unavailable'> {
    try {
      return await this.#leases.waitForRelease(key, { observed, signal });
    } catch (error) {
      if (!(error instanceof CoordinationUnavailableError)) throw error;
      this.#outage.noticeDown(error);
      return 'unavailable';
    }
  }

  /**
   * Runs the work under the lease and releases it when the flight ends: when the work settles
   * (`run`), when its value settles (`hold`), or at the deadline, whichever comes first, so a
   * work that ignores its signal does not keep the key owned. Releases are not awaited: the
   * outcome never waits on Redis, and the release is written before the next acquire.
   */
  async #own<T>(lease: Lease, work: FlightWork<T>, signal: AbortSignal, heldUntil: HeldUntil<T>): Promise<T> {
    const onDeadline = () => void lease.release('failed');
    signal.addEventListener('abort', onDeadline, { once: true });
    const release = (outcome: 'ok' | 'failed') => {
      signal.removeEventListener('abort', onDeadline);
      void lease.release(outcome);
    };
    let value: T;
    try {
      value = await work(signal);
    } catch (error) {
      release('failed');
      throw error;
    }
    if (!heldUntil) {
      release('ok');
      return value;
    }
    new Promise((resolve) => resolve(heldUntil(value))).then(() => release('ok'), () => release('failed'));
    return value;
  }
}
