/**
 * Holds a store call in flight, so a test can act inside the moment between two steps of the
 * code under test (a fill's link before its publish, a push's publish before its record).
 */

type Arguments<F> = F extends (...args: infer A) => Promise<unknown> ? A : never;

export interface HeldCall {
  /** Resolves once the matching call is being held. */
  reached: Promise<void>;
  /** Lets the held call go on. */
  release(): void;
  /** Puts the original method back (later calls are not held). */
  restore(): void;
}

/** Holds the first call of `object[method]` whose arguments `matches`, until `release()`; every other call runs at once. */
export function holdFirstCall<T extends object, K extends keyof T>(object: T, method: K, matches: (...args: Arguments<T[K]>) => boolean): HeldCall {
  const original = object[method];
  const call = (original as (...args: Arguments<T[K]>) => Promise<unknown>).bind(object);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let reached!: () => void;
  const held = new Promise<void>((resolve) => (reached = resolve));
  let holding = true;
  const holder = async (...args: Arguments<T[K]>) => {
    if (holding && matches(...args)) {
      holding = false;
      reached();
      await gate;
    }
    return call(...args);
  };
  object[method] = holder as T[K];
  return { reached: held, release, restore: () => void (object[method] = original) };
}
