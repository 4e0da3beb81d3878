/**
 * Things that must keep moving (a response to a client, a cache fill from an upstream), checked
 * by one timer that runs only while there is something to watch. An item that has not moved for
 * `limitMs` is forgotten, then expired; what counts as moving is the caller's rule, given how
 * far the item got since it last moved. Serves http/send-watchdog.ts and
 * pull-through/stall-watchdog.ts.
 */
export interface ProgressRules<T> {
  limitMs: number;
  /** How often the items are looked at. */
  checkEveryMs: number;
  /** How far `item` has got: bytes, in both users. */
  progress(item: T): number;
  /** Whether `item` moved, having got `advanced` further since it last did. */
  moved(item: T, advanced: number): boolean;
  /** `item` did not move for `limitMs`; it is no longer watched. */
  expire(item: T): void;
}

interface Mark {
  at: number;
  progress: number;
}

export class ProgressWatch<T> {
  readonly #marks = new Map<T, Mark>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly rules: ProgressRules<T>) {}

  watch(item: T): void {
    this.#marks.set(item, { at: Date.now(), progress: this.rules.progress(item) });
    this.#timer ??= setInterval(() => this.#check(), this.rules.checkEveryMs).unref();
  }

  forget(item: T): void {
    this.#marks.delete(item);
    if (this.#marks.size === 0 && this.#timer) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #check(): void {
    const now = Date.now();
    for (const [item, mark] of this.#marks) {
      const progress = this.rules.progress(item);
      if (this.rules.moved(item, progress - mark.progress)) {
        mark.at = now;
        mark.progress = progress;
      } else if (now - mark.at >= this.rules.limitMs) {
        this.forget(item);
        this.rules.expire(item);
      }
    }
  }
}
