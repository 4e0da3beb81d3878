/**
 * A cache fill's claim on the budget, made as its bytes arrive (issue 12 item 7): never from the
 * size the upstream announced, which an upstream may lie about (one announcing 180 MiB and
 * sending 10 bytes used to evict almost the whole cache). The claim grows in steps, so eviction
 * runs a few times per fill rather than once per chunk, and never beyond the whole budget: a
 * blob larger than that is served once and not kept.
 */
export interface ReservationHost {
  readonly maxBytes: number;
  /**
   * Counts `bytes` more against the budget. Undefined when the budget has room; else a promise
   * of the eviction that makes it.
   */
  reserveBytes(bytes: number): Promise<void> | undefined;
  releaseBytes(bytes: number): void;
}

const MIN_STEP_BYTES = 64 * 1024;
const MAX_STEP_BYTES = 16 * 1024 * 1024;

export class Reservation {
  #used = 0;
  #reserved = 0;
  readonly #step: number;

  constructor(private readonly host: ReservationHost) {
    this.#step = Math.min(MAX_STEP_BYTES, Math.max(MIN_STEP_BYTES, Math.floor(host.maxBytes / 64)));
  }

  /** Bytes counted so far: what the fill has written (or is about to). */
  get used(): number {
    return this.#used;
  }

  /**
   * Counts `bytes` about to be written. Undefined when the claim already covers them (nearly
   * every chunk: no promise on a fill's hot path); else a promise that resolves once the budget
   * has room for the next step.
   */
  grow(bytes: number): Promise<void> | undefined {
    this.#used += bytes;
    if (this.#used <= this.#reserved) return undefined;
    const target = Math.min(Math.ceil(this.#used / this.#step) * this.#step, this.host.maxBytes);
    if (target <= this.#reserved) return undefined;
    const more = target - this.#reserved;
    this.#reserved = target;
    return this.host.reserveBytes(more);
  }

  /** Gives the claim back (the blob was published and counted, or the fill failed). Idempotent. */
  release(): void {
    if (this.#reserved === 0) return;
    this.host.releaseBytes(this.#reserved);
    this.#reserved = 0;
  }
}
