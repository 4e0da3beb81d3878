/**
 * Leases in Redis: at most one process at a time owns the work for a key across the fleet
 * (issue 15 item 4, DESIGN.md "Replicas"). A lease is `SET <p>lease:<key> "<token> <owner>" NX PX
 * ttl`; the owner refreshes it every ttl/3 while its work runs, and releases it when the work
 * settles, announcing the outcome on `<p>lease:released`. A process killed mid-work stops
 * refreshing, so its lease is gone within ttl and a waiter takes over.
 *
 * `owner` says where the owner can be reached (for blobs, the replica's `cluster.advertiseUrl`,
 * so a loser can stream the download in progress from it). The random token beside it makes
 * each acquisition unique, so a refresh or release never touches a lease that expired and was
 * taken again, even by the same process.
 *
 * The lease is an optimisation; correctness comes from content addressing. Every call rejects
 * with CoordinationUnavailableError when Redis cannot answer, which callers treat as "coordinate
 * within this process".
 */
import { randomUUID } from 'node:crypto';
import { assertIntegerOption, assertTextOption } from './coordination-errors.js';
import { keepAlive, waitFor } from './lease-timers.js';
import type { RedisCoordination } from './redis-coordination.js';

export type LeaseOutcome = 'ok' | 'failed';

/** How a wait ended: the owner's announced outcome, the lease gone without one (expired, or the message lost), or the timeout. */
export type LeaseWaitResult = LeaseOutcome | 'gone' | 'timeout';

/** A lease this process holds, whatever keeps it (Redis here; the primary process for `serve --workers`). */
export interface Lease {
  /** The owner string stored with it. */
  readonly owner: string;
  /** True once the lease was found taken by another holder (a stall past its TTL). */
  readonly lost: boolean;
  /** Ends it and tells the waiters the outcome; idempotent, never rejects. */
  release(outcome: LeaseOutcome): Promise<boolean>;
}

export type LeaseClaim =
  | { readonly acquired: true; readonly lease: Lease }
  /** `value` is what to wait on (waitForRelease); `owner` is the holder's owner string. */
  | { readonly acquired: false; readonly owner: string; readonly value: string };

export interface LeaseWaitOptions {
  /** The holder's value from the claim: a wait ends when the key holds anything else. */
  observed: string;
  /** Give up after this long, resolving 'timeout'; default: wait until released or aborted. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * What flights need from leases (redis-flights.ts, replicas/fleet-downloads.ts): RedisLeases across
 * replicas, IpcLeases across the workers of one machine (coordination/worker-leases.ts).
 */
export interface Leases {
  /** Takes the lease for `key` if nobody holds it; otherwise says who does. */
  acquire(key: string, owner: string, ttlMs: number): Promise<LeaseClaim>;
  /** The owner string of whoever holds the lease now, or undefined. */
  ownerOf(key: string): Promise<string | undefined>;
  /** Waits until the holder seen in `options.observed` no longer holds the lease. */
  waitForRelease(key: string, options: LeaseWaitOptions): Promise<LeaseWaitResult>;
}

export interface RedisLeasesOptions {
  /** How often a waiter looks at the lease in case the release message was lost; default 500 ms. */
  pollIntervalMs?: number;
}

export class RedisLeases implements Leases {
  readonly #redis: RedisCoordination;
  readonly #pollIntervalMs: number;
  /** Waiters in this process, by lease key (unprefixed); one subscription serves them all. */
  readonly #waiters = new Map<string, Set<(outcome: LeaseOutcome) => void>>();

  constructor(redis: RedisCoordination, options: RedisLeasesOptions = {}) {
    this.#redis = redis;
    this.#pollIntervalMs = options.pollIntervalMs ?? 500;
    assertIntegerOption('pollIntervalMs', this.#pollIntervalMs, 1);
    redis.listen(redis.leaseReleasedChannel, (message) => this.#onReleased(message));
  }

  /** Takes the lease for `key` if nobody holds it; otherwise says who does. */
  async acquire(key: string, owner: string, ttlMs: number): Promise<LeaseClaim> {
    assertTextOption('owner', owner);
    assertIntegerOption('ttlMs', ttlMs, 3);
    const value = `${randomUUID()} ${owner}`;
    const [taken, held] = (await this.#redis.script('leaseAcquire', [this.#key(key)], [value, ttlMs])) as [number, string];
    if (taken === 1) return { acquired: true, lease: new HeldLease(this.#redis, key, this.#key(key), value, ttlMs) };
    return { acquired: false, owner: ownerOf(held), value: held };
  }

  /** The owner string of whoever holds the lease now, or undefined. */
  async ownerOf(key: string): Promise<string | undefined> {
    const value = await this.#redis.call((redis) => redis.get(this.#key(key)));
    return value === null ? undefined : ownerOf(value);
  }

  /**
   * Waits until the holder seen in `observed` no longer holds the lease: its release message,
   * or a poll that finds the key gone or held by someone else. Rejects with
   * CoordinationUnavailableError when a poll cannot reach Redis, and with the signal's reason.
   */
  waitForRelease(key: string, options: LeaseWaitOptions): Promise<LeaseWaitResult> {
    const redisKey = this.#key(key);
    return waitFor<LeaseWaitResult>({
      listen: (settle) => this.#listen(key, settle, options.timeoutMs),
      check: async () => ((await this.#redis.call((redis) => redis.get(redisKey))) === options.observed ? undefined : 'gone'),
      pollIntervalMs: this.#pollIntervalMs,
      signal: options.signal,
    });
  }

  #listen(key: string, settle: (result: LeaseWaitResult) => void, timeoutMs: number | undefined): () => void {
    let waiters = this.#waiters.get(key);
    if (!waiters) {
      waiters = new Set();
      this.#waiters.set(key, waiters);
    }
    const waiter = (outcome: LeaseOutcome) => settle(outcome);
    waiters.add(waiter);
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => settle('timeout'), timeoutMs);
    return () => {
      clearTimeout(timer);
      waiters.delete(waiter);
      if (waiters.size === 0 && this.#waiters.get(key) === waiters) this.#waiters.delete(key);
    };
  }

  #onReleased(message: string): void {
    let parsed: { key?: unknown; outcome?: unknown };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      return;
    }
    if (typeof parsed.key !== 'string' || (parsed.outcome !== 'ok' && parsed.outcome !== 'failed')) return;
    for (const waiter of [...(this.#waiters.get(parsed.key) ?? [])]) waiter(parsed.outcome);
  }

  #key(key: string): string {
    return `${this.#redis.prefix}lease:${key}`;
  }
}

/** A lease this process holds: refreshed every ttl/3 until released, or until found lost. */
export class HeldLease implements Lease {
  readonly owner: string;
  readonly #redis: RedisCoordination;
  readonly #redisKey: string;
  readonly #value: string;
  readonly #stopRefreshing: () => void;
  #released: Promise<boolean> | undefined;
  #lost = false;

  constructor(redis: RedisCoordination, readonly key: string, redisKey: string, value: string, ttlMs: number) {
    this.#redis = redis;
    this.#redisKey = redisKey;
    this.#value = value;
    this.owner = ownerOf(value);
    const refresh = async () => (await redis.script('leaseRefresh', [redisKey], [value, ttlMs])) === 1;
    this.#stopRefreshing = keepAlive(Math.max(1, Math.floor(ttlMs / 3)), refresh, () => void (this.#lost = true));
  }

  /** True once a refresh found the lease expired (a stall longer than its TTL): another process may own the key now. */
  get lost(): boolean {
    return this.#lost;
  }

  /**
   * Stops refreshing, deletes the lease if it is still ours and announces `outcome` to the
   * fleet's waiters. Idempotent (the first outcome counts); never rejects: it resolves false
   * when the lease was no longer ours or Redis could not be reached (the lease then expires
   * within its TTL). The command is written before this returns, so an acquire issued after it
   * on the same connection finds the lease gone.
   */
  release(outcome: LeaseOutcome): Promise<boolean> {
    if (this.#released) return this.#released;
    this.#stopRefreshing();
    const message = JSON.stringify({ key: this.key, outcome });
    this.#released = this.#redis.script('leaseRelease', [this.#redisKey], [this.#value, this.#redis.leaseReleasedChannel, message])
      .then((deleted) => deleted === 1, () => false);
    return this.#released;
  }
}

function ownerOf(value: string): string {
  return value.slice(value.indexOf(' ') + 1);
}
