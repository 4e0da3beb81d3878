/**
 * Records blob uses in the metadata blob index without ever making a request wait: a use is a
 * Map insert on the warm path, and the uses are written behind (`BlobIndex.touch`) every
 * `flushMs` and before every eviction pass, so the LRU order eviction reads is current. Each
 * blob keeps the time of its last use (not of the flush, which would make a use look newer than
 * a fill that followed it): one batch per millisecond that saw uses, at most one entry per blob.
 * A failed write loses one batch of recency, never a request.
 */
import type { BlobIndex } from '../metadata/metadata-store.js';

export class RecencyWriter {
  #pending = new Map<string, number>();
  #flushing: Promise<void> = Promise.resolve();
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly blobs: Pick<BlobIndex, 'touch'>, flushMs: number, private readonly onError: (error: unknown) => void) {
    this.#timer = setInterval(() => void this.flush(), flushMs);
    this.#timer.unref();
  }

  used(digest: string): void {
    this.#pending.set(digest, Date.now());
  }

  /** Writes what was used since the last flush; resolves once it (and any earlier flush) is written. */
  flush(): Promise<void> {
    if (this.#pending.size > 0) {
      const batches = slices(this.#pending);
      this.#pending = new Map();
      this.#flushing = this.#flushing.then(async () => {
        for (const [at, digests] of batches) await this.blobs.touch(digests, at);
      }).catch(this.onError);
    }
    return this.#flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}

function slices(uses: Map<string, number>): Map<number, string[]> {
  const batches = new Map<number, string[]>();
  for (const [digest, at] of uses) {
    const batch = batches.get(at);
    if (batch) batch.push(digest);
    else batches.set(at, [digest]);
  }
  return batches;
}
