/**
 * What a coordination user knows about Redis being away. Two jobs:
 *
 * - say once that Redis went away and once that it came back, however many calls noticed in
 *   between: an outage under load must not write a log line per request;
 * - while it is away, let one call per `probeIntervalMs` try Redis and send the others straight
 *   to the local fallback: a hung Redis fails a command only after commandTimeoutMs, which every
 *   cold request would otherwise pay.
 */

/** The two pino methods used (src/log.ts); any logger of that shape fits. */
export interface CoordinationLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

const PROBE_INTERVAL_MS = 1_000;

export class OutageNotice {
  #down = false;
  #lastProbe = 0;

  /** `what` names the coordination, `fallback` what it does without Redis. */
  constructor(private readonly what: string, private readonly fallback: string, private readonly log: CoordinationLog | undefined) {}

  get down(): boolean {
    return this.#down;
  }

  /** False while Redis is away and another call tried it less than a second ago. */
  shouldTryRedis(): boolean {
    if (!this.#down) return true;
    const now = performance.now();
    if (now - this.#lastProbe < PROBE_INTERVAL_MS) return false;
    this.#lastProbe = now;
    return true;
  }

  noticeDown(error: unknown): void {
    this.#lastProbe = performance.now();
    if (this.#down) return;
    this.#down = true;
    this.log?.warn({ err: error }, `${this.what}: Redis is unreachable, ${this.fallback} until it is back`);
  }

  noticeUp(): void {
    if (!this.#down) return;
    this.#down = false;
    this.log?.info({}, `${this.what}: Redis is back, coordinating across processes again`);
  }
}
