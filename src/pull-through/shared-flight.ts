/**
 * Concurrent callers asking for the same thing share one piece of work. The entry is removed when
 * the work settles, and every waiter sees the same outcome, errors included (compare undici's
 * lib/interceptor/deduplicate.js).
 */
export class SharedFlights<Value> {
  private readonly flights = new Map<string, Promise<Value>>();

  get size(): number {
    return this.flights.size;
  }

  /** Runs `work` unless a call with the same key is already under way; `joined` says which. */
  run(key: string, work: () => Promise<Value>): { promise: Promise<Value>; joined: boolean } {
    const existing = this.flights.get(key);
    if (existing) return { promise: existing, joined: true };
    const promise = work().finally(() => this.flights.delete(key));
    this.flights.set(key, promise);
    return { promise, joined: false };
  }
}
