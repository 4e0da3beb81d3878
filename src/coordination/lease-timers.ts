/**
 * The two timers every holder and every waiter of a Redis lease or slot runs: the holder keeps
 * what it holds alive, the waiter listens for a release and polls in case the message was lost
 * (pub/sub delivers at most once, and nothing while a connection is down).
 */

/**
 * Calls `refresh` every `intervalMs` until stopped. `refresh` resolves false when what it keeps
 * alive is no longer ours (it expired and another process took it): then `onLost` runs and the
 * refreshing ends. A failed refresh (Redis down) is retried at the next tick; if Redis stays
 * away longer than the TTL, the lease simply expires there.
 */
export function keepAlive(intervalMs: number, refresh: () => Promise<boolean>, onLost: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = async () => {
    const stillOurs = await refresh().catch(() => true);
    if (stopped) return;
    if (!stillOurs) {
      stopped = true;
      onLost();
      return;
    }
    schedule();
  };
  const schedule = () => {
    timer = setTimeout(() => void tick(), intervalMs);
    // A refresh timer must not keep a process alive that has nothing else to do.
    timer.unref();
  };
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export interface WaitOptions<R> {
  /** Subscribes to the release messages; returns the unsubscribe function. */
  listen(settle: (result: R) => void): () => void;
  /** Looks at Redis: a result ends the wait, undefined keeps waiting, a rejection ends it too. */
  check?: () => Promise<R | undefined>;
  /** How often `check` runs; it also runs once at the start, to see a release that came before `listen`. */
  pollIntervalMs: number;
  /** Without `check`, the wait ends with `onPoll` after pollIntervalMs (the caller then looks itself). */
  onPoll?: R;
  /** Rejects with the signal's reason when it aborts. */
  signal?: AbortSignal;
}

/** Waits for a message, a poll that finds the release, or the signal, whichever comes first. */
export function waitFor<R>(options: WaitOptions<R>): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (settle: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unlisten();
      options.signal?.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = () => finish(() => reject(options.signal!.reason));
    const unlisten = options.listen((result) => finish(() => resolve(result)));
    const poll = async () => {
      if (done) return;
      if (!options.check) return finish(() => resolve(options.onPoll as R));
      try {
        const result = await options.check();
        if (result !== undefined) return finish(() => resolve(result));
      } catch (error) {
        return finish(() => reject(error));
      }
      if (!done) timer = setTimeout(() => void poll(), options.pollIntervalMs);
    };
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.check) void poll();
    else timer = setTimeout(() => void poll(), options.pollIntervalMs);
  });
}
