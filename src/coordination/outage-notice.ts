/**
 * Says once that Redis went away and once that it came back, however many calls noticed in
 * between: a Redis outage under load must not write a log line per request.
 */

/** The two pino methods used (src/log.ts); any logger of that shape fits. */
export interface CoordinationLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export class OutageNotice {
  #down = false;

  /** `what` names the coordination and what it falls back to, e.g. "flights: coordinating within this process". */
  constructor(private readonly what: string, private readonly fallback: string, private readonly log: CoordinationLog | undefined) {}

  get down(): boolean {
    return this.#down;
  }

  noticeDown(error: unknown): void {
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
