/**
 * Leases for the workers of one machine, kept by their primary (lease-table.ts) and reached over
 * IPC: the Leases interface RedisLeases implements (coordination/redis-leases.ts), so the same
 * flights and blob downloads (replicas/fleet-downloads.ts) coordinate workers as they coordinate
 * replicas. The holder refreshes its lease every third of its TTL, as with Redis; the primary
 * also ends a worker's leases the moment that worker exits.
 */
import { randomUUID } from 'node:crypto';
import { keepAlive } from '../coordination/lease-timers.js';
import type { Lease, LeaseClaim, LeaseOutcome, LeaseWaitOptions, LeaseWaitResult, Leases } from '../coordination/redis-leases.js';
import type { IpcChannel } from './ipc-channel.js';

export class IpcLeases implements Leases {
  constructor(private readonly channel: IpcChannel) {}

  async acquire(key: string, owner: string, ttlMs: number): Promise<LeaseClaim> {
    const value = `${randomUUID()} ${owner}`;
    const result = await this.channel.request<{ acquired: boolean; value?: string }>({ op: 'lease.acquire', key, value, ttlMs });
    if (result.acquired) return { acquired: true, lease: new IpcLease(this.channel, key, value, ttlMs) };
    return { acquired: false, owner: ownerOf(result.value!), value: result.value! };
  }

  async ownerOf(key: string): Promise<string | undefined> {
    const value = await this.channel.request<string | null>({ op: 'lease.owner', key });
    return value === null ? undefined : ownerOf(value);
  }

  waitForRelease(key: string, options: LeaseWaitOptions): Promise<LeaseWaitResult> {
    const answer = this.channel.request<LeaseWaitResult>({ op: 'lease.wait', key, observed: options.observed, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) });
    const signal = options.signal;
    if (!signal) return answer;
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      answer.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }
}

class IpcLease implements Lease {
  readonly owner: string;
  #lost = false;
  #released: Promise<boolean> | undefined;
  readonly #stopRefreshing: () => void;

  constructor(private readonly channel: IpcChannel, private readonly key: string, private readonly value: string, ttlMs: number) {
    this.owner = ownerOf(value);
    const refresh = () => channel.request<boolean>({ op: 'lease.refresh', key, value, ttlMs });
    this.#stopRefreshing = keepAlive(Math.max(1, Math.floor(ttlMs / 3)), refresh, () => void (this.#lost = true));
  }

  get lost(): boolean {
    return this.#lost;
  }

  release(outcome: LeaseOutcome): Promise<boolean> {
    if (this.#released) return this.#released;
    this.#stopRefreshing();
    this.#released = this.channel.request<boolean>({ op: 'lease.release', key: this.key, value: this.value, outcome }).catch(() => false);
    return this.#released;
  }
}

function ownerOf(value: string): string {
  return value.slice(value.indexOf(' ') + 1);
}
