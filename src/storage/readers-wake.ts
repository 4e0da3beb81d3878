/**
 * The readers following a file as it grows (storage/growing-file.ts, http/send-file-zero-copy.ts),
 * each waiting for its next look: `GrowingFile.onceChanged`. Bytes are announced once per burst
 * (the chunks of one socket read arrive in one go, and each wake costs every follower a
 * sendfile(2)); a settled write (committed, failed) wakes them at once.
 */
export class ReadersWake {
  readonly #waiters = new Set<() => void>();
  #scheduled = false;

  /** Calls `listener` once, at the next wake; returns a cancel function. */
  onceChanged(listener: () => void): () => void {
    this.#waiters.add(listener);
    return () => this.#waiters.delete(listener);
  }

  /** More bytes: wakes every reader once, after the current burst (a microtask). */
  soon(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.now();
    });
  }

  /** The write settled or failed: wakes every reader now. */
  now(): void {
    if (this.#waiters.size === 0) return;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const waiter of waiters) waiter();
  }
}
