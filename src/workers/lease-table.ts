/**
 * The leases of `serve --workers N`, kept by the primary process for its workers (the same
 * contract as RedisLeases, coordination/redis-leases.ts, without Redis: the workers share one
 * machine, and the primary outlives them). A lease has a value ("<token> <owner>", the owner
 * being the worker's loopback address), a TTL its holder refreshes, and waiters told when it ends:
 * released with an outcome, expired ('gone'), or dropped because its worker exited ('gone').
 */
import type { LeaseOutcome, LeaseWaitResult } from '../coordination/redis-leases.js';

interface Entry {
  value: string;
  holder: number;
  timer: NodeJS.Timeout;
}

type Waiter = { observed: string; settle: (result: LeaseWaitResult) => void };

export class LeaseTable {
  readonly #entries = new Map<string, Entry>();
  readonly #waiters = new Map<string, Set<Waiter>>();

  /** Takes the lease for `holder` (a worker id) unless held: then returns the holder's value. */
  acquire(key: string, value: string, ttlMs: number, holder: number): { acquired: true } | { acquired: false; value: string } {
    const entry = this.#entries.get(key);
    if (entry) return { acquired: false, value: entry.value };
    this.#entries.set(key, { value, holder, timer: this.#expiry(key, value, ttlMs) });
    return { acquired: true };
  }

  /** Extends the lease if `value` still holds it. */
  refresh(key: string, value: string, ttlMs: number): boolean {
    const entry = this.#entries.get(key);
    if (entry?.value !== value) return false;
    clearTimeout(entry.timer);
    entry.timer = this.#expiry(key, value, ttlMs);
    return true;
  }

  /** Ends the lease if `value` still holds it, telling its waiters `outcome`. */
  release(key: string, value: string, outcome: LeaseOutcome): boolean {
    if (this.#entries.get(key)?.value !== value) return false;
    this.#end(key, outcome);
    return true;
  }

  valueOf(key: string): string | undefined {
    return this.#entries.get(key)?.value;
  }

  /** Resolves once `observed` no longer holds the lease, or after `timeoutMs` with 'timeout'. */
  wait(key: string, observed: string, timeoutMs: number | undefined): Promise<LeaseWaitResult> {
    if (this.#entries.get(key)?.value !== observed) return Promise.resolve('gone');
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const waiters = this.#waiters.get(key) ?? new Set<Waiter>();
      this.#waiters.set(key, waiters);
      const waiter: Waiter = {
        observed,
        settle: (result) => {
          clearTimeout(timer);
          waiters.delete(waiter);
          if (waiters.size === 0 && this.#waiters.get(key) === waiters) this.#waiters.delete(key);
          resolve(result);
        },
      };
      waiters.add(waiter);
      if (timeoutMs !== undefined) timer = setTimeout(() => waiter.settle('timeout'), timeoutMs);
    });
  }

  /** A worker exited: its leases end at once, as if they had expired. */
  dropHolder(holder: number): void {
    for (const [key, entry] of [...this.#entries]) if (entry.holder === holder) this.#end(key, 'gone');
  }

  get size(): number {
    return this.#entries.size;
  }

  #expiry(key: string, value: string, ttlMs: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      if (this.#entries.get(key)?.value === value) this.#end(key, 'gone');
    }, ttlMs);
    timer.unref();
    return timer;
  }

  #end(key: string, result: LeaseWaitResult): void {
    const entry = this.#entries.get(key);
    if (entry) clearTimeout(entry.timer);
    this.#entries.delete(key);
    for (const waiter of [...(this.#waiters.get(key) ?? [])]) waiter.settle(result);
  }
}
