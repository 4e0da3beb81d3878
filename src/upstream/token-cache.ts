/**
 * Bearer tokens per key (realm, service, scope) until shortly before they expire. Concurrent
 * callers for one key share a single fetch (coordination/flights.ts): every waiter sees the same
 * outcome, errors included, and a token server that never answers fails them at the deadline.
 */
import { LocalFlights, type Flights } from '../coordination/flights.js';

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
/** A token request (a small JSON answer) that takes longer than this has failed. */
const TOKEN_DEADLINE_MS = 60_000;

export class TokenCache {
  readonly #tokens = new Map<string, CachedToken>();
  readonly #flights: Flights;
  readonly #now: () => number;

  constructor(options: { now?: () => number; flights?: Flights } = {}) {
    this.#now = options.now ?? Date.now;
    this.#flights = options.flights ?? new LocalFlights();
  }

  get(key: string, fetchToken: () => Promise<IssuedToken>): Promise<string> {
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > this.#now()) return Promise.resolve(cached.token);
    return this.#flights.run(`token ${key}`, () => this.#fetchAndStore(key, fetchToken), { deadlineMs: TOKEN_DEADLINE_MS });
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
