/**
 * Once per key: concurrent callers asking for the same thing share one piece of work, and every
 * waiter sees the same outcome, errors included (compare undici's lib/interceptor/deduplicate.js).
 * Each flight has a deadline: its work gets an AbortSignal that aborts at the deadline, and the
 * waiters are answered with a DeadlineExceededError then, whether or not the work stopped.
 *
 * `hold` is for work whose value is a handle on something still running, such as a cache fill
 * that clients join while it downloads: the flight stays open, and joiners get the same handle,
 * until the handle's `settled` promise does.
 *
 * The contract a distributed implementation (a Redis lease: `SET NX PX`, refreshed while the
 * work runs) keeps as well: one owner runs `work` per key; a waiter in another process does not
 * receive the owner's value, it waits for the owner's flight to end and then runs `work` itself.
 * So `work` must first look at shared state (the content store, the metadata store) and return
 * what it finds there, so that the late runs are cheap. Values never cross processes; only
 * correctness by content addressing does.
 */
import { DeadlineExceededError } from '../domain/errors.js';

export interface FlightOptions {
  /** From the start of the flight (queueing included) to its end, `settled` included for `hold`. */
  deadlineMs: number;
}

/** A value that outlives the work that made it: its flight ends when `settled` does. */
export interface Landing {
  readonly settled: Promise<unknown>;
}

export type FlightWork<T> = (signal: AbortSignal) => Promise<T>;

export interface Flights {
  /** Runs `work` unless a flight for `key` is under way, in which case its outcome is shared. */
  run<T>(key: string, work: FlightWork<T>, options: FlightOptions): Promise<T>;
  /** Like `run`, but the flight, and sharing its value, lasts until the value's `settled` does. */
  hold<T extends Landing>(key: string, work: FlightWork<T>, options: FlightOptions): Promise<T>;
}

/** Flights within one process: a map owned by the instance, each entry removed when its flight ends. */
export class LocalFlights implements Flights {
  readonly #flights = new Map<string, Promise<unknown>>();

  /** Flights under way (for tests and metrics). */
  get size(): number {
    return this.#flights.size;
  }

  run<T>(key: string, work: FlightWork<T>, options: FlightOptions): Promise<T> {
    return this.#join(key, work, options, undefined);
  }

  hold<T extends Landing>(key: string, work: FlightWork<T>, options: FlightOptions): Promise<T> {
    return this.#join(key, work, options, (value) => value.settled);
  }

  /** `heldUntil` undefined: the flight ends with the work, before any waiter sees its outcome. */
  #join<T>(key: string, work: FlightWork<T>, options: FlightOptions, heldUntil: ((value: T) => unknown) | undefined): Promise<T> {
    const existing = this.#flights.get(key);
    if (existing) return existing as Promise<T>;
    const { signal, deadline, stop } = deadlineFor(key, options.deadlineMs);
    const value = Promise.race([(async () => work(signal))(), deadline]);
    const end = () => {
      stop();
      if (this.#flights.get(key) === value) this.#flights.delete(key);
    };
    const ended = heldUntil ? value.then((result) => Promise.race([heldUntil(result), deadline])) : value;
    ended.then(end, end);
    this.#flights.set(key, value);
    return value;
  }
}

/**
 * The deadline is a timer this flight owns, not AbortSignal.timeout(): AbortSignal.any() holds
 * its sources weakly, so a timeout signal combined downstream could be garbage-collected
 * mid-download and never fire.
 */
function deadlineFor(key: string, deadlineMs: number): { signal: AbortSignal; deadline: Promise<never>; stop: () => void } {
  if (!Number.isFinite(deadlineMs) || deadlineMs <= 0) throw new RangeError(`expected deadlineMs to be a positive number, got ${deadlineMs}`);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DeadlineExceededError(`${key.slice(0, 200)} did not finish within ${deadlineMs / 1000} s`)), deadlineMs);
  const deadline = new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(controller.signal.reason as Error), { once: true }));
  deadline.catch(() => {});
  return { signal: controller.signal, deadline, stop: () => clearTimeout(timer) };
}
