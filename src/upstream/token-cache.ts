/**
 * Bearer tokens per key (realm, service, scope) until shortly before they expire. Concurrent
 * callers for one key share a single fetch: the in-flight map is owned by the instance, cleared
 * when the fetch settles, and every waiter sees the same outcome, errors included.
 */
export interface IssuedToken {
  token: string;
  /** Lifetime from the token server's `expires_in`. */
  expiresInSeconds: number;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Stop using a token this long before it expires, so it does not lapse on the way. */
const EARLY_EXPIRY_SECONDS = 5;
/** Past this many entries, expired tokens (one per repository scope) are swept on insert. */
const SWEEP_THRESHOLD = 1000;

export class TokenCache {
  readonly #tokens = new Map<string, CachedToken>();
  readonly #inFlight = new Map<string, Promise<string>>();
  readonly #now: () => number;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  get(key: string, fetchToken: () => Promise<IssuedToken>): Promise<string> {
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > this.#now()) return Promise.resolve(cached.token);
    const pending = this.#inFlight.get(key);
    if (pending) return pending;
    const fetching = this.#fetchAndStore(key, fetchToken).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, fetching);
    return fetching;
  }

  /** Drops `token` after the upstream rejected it, unless a newer token already replaced it. */
  invalidate(key: string, token: string): void {
    if (this.#tokens.get(key)?.token === token) this.#tokens.delete(key);
  }

  async #fetchAndStore(key: string, fetchToken: () => Promise<IssuedToken>): Promise<string> {
    const issued = await fetchToken();
    const now = this.#now();
    if (this.#tokens.size >= SWEEP_THRESHOLD) this.#sweep(now);
    this.#tokens.set(key, { token: issued.token, expiresAt: now + usableSeconds(issued.expiresInSeconds) * 1000 });
    return issued.token;
  }

  #sweep(now: number): void {
    for (const [key, cached] of this.#tokens) if (cached.expiresAt <= now) this.#tokens.delete(key);
  }
}

/** Short-lived tokens keep at least half their life rather than none. */
function usableSeconds(expiresInSeconds: number): number {
  return Math.max(expiresInSeconds - EARLY_EXPIRY_SECONDS, expiresInSeconds / 2);
}
