/**
 * Who wants each blob download (issue 12 item 8): clients waiting for it to start or following
 * it, and prefetches (manifest-prefetch.ts) waiting for it to start. A queued fetch nobody wants
 * any more is dropped before it reaches the upstream; a running fill no client follows may be
 * abandoned when it stalls (stall-watchdog.ts). A prefetch keeps a fetch in its queue, but not a
 * stalled fill alive: nobody is waiting for those bytes yet.
 */
export type DemandKind = 'client' | 'prefetch';

interface Count {
  client: number;
  prefetch: number;
}

export class DownloadDemand {
  readonly #counts = new Map<string, Count>();

  /** Counts one more `kind` for `key`; the function returned takes it back (once, however often it is called). */
  enter(key: string, kind: DemandKind): () => void {
    let count = this.#counts.get(key);
    if (!count) {
      count = { client: 0, prefetch: 0 };
      this.#counts.set(key, count);
    }
    count[kind] += 1;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#leave(key, kind);
    };
  }

  /** Someone still waits for or follows it. */
  wanted(key: string): boolean {
    return this.#counts.has(key);
  }

  /** A client (not only a prefetch) waits for or follows it. */
  attended(key: string): boolean {
    return (this.#counts.get(key)?.client ?? 0) > 0;
  }

  #leave(key: string, kind: DemandKind): void {
    const count = this.#counts.get(key);
    if (!count) return;
    count[kind] -= 1;
    if (count.client === 0 && count.prefetch === 0) this.#counts.delete(key);
  }
}
