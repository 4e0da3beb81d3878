/**
 * Limits password guessing (issue 12 item 6): each client address and each user name may fail
 * `perClient` / `perUser` times per window; past that, checks are refused with
 * ClientRateLimitedError (429 + Retry-After, RFC 6585 section 4) before any bcrypt runs.
 *
 * An attempt reserves its place before the comparison and gives it back when the password was
 * right. So a burst of concurrent guesses is cut at the limit too, not only guesses that arrive
 * after earlier failures were counted; and honest logins never use up the allowance.
 *
 * Per address, a flood from one place stops quickly without touching anyone else. Per user, a
 * flood from many addresses stops too; the cost is that new logins of an attacked user wait
 * for the window, while logins already remembered (htpasswd.ts checks those first) go on. Other
 * users from other addresses are never affected. Both tables are bounded LRU caches: an attacker
 * can push old entries out, which at worst gives an evicted key a fresh allowance.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { ClientRateLimitedError } from '../domain/errors.js';

export interface FailureLimits {
  /** Failed checks per client address per window; default 5. */
  perClient: number;
  /** Failed checks per user name (from any address) per window; default 20. */
  perUser: number;
  /** Window length; default 60 s. */
  windowMs: number;
  /** Addresses and user names tracked at most (each table); default 10,000. */
  maxTracked?: number;
}

export const DEFAULT_FAILURE_LIMITS: FailureLimits = { perClient: 5, perUser: 20, windowMs: 60_000, maxTracked: 10_000 };

interface Window {
  count: number;
  endsAt: number;
}

export interface Reservation {
  /** Gives back the places the attempt reserved; call it when the password was right. */
  refund(): void;
  /** The client address had no failures (nor attempts in progress) in its window. */
  firstFromClient: boolean;
}

export class AuthFailureLimiter {
  readonly #limits: FailureLimits;
  readonly #byClient: LRUCache<string, Window>;
  readonly #byUser: LRUCache<string, Window>;
  /** User names are keyed by an HMAC: a fixed size whatever the client sent, and no names kept. */
  readonly #userKey = randomBytes(32);

  constructor(limits: Partial<FailureLimits> = {}) {
    this.#limits = { ...DEFAULT_FAILURE_LIMITS, ...limits };
    for (const key of ['perClient', 'perUser', 'windowMs'] as const) {
      const value = this.#limits[key];
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`expected failureLimits.${key} to be a positive integer, got ${value}`);
    }
    const options = { max: this.#limits.maxTracked ?? 10_000, ttl: this.#limits.windowMs, ttlAutopurge: false };
    this.#byClient = new LRUCache(options);
    this.#byUser = new LRUCache(options);
  }

  /** Entries held in both tables (for tests of the bound). */
  get size(): number {
    return this.#byClient.size + this.#byUser.size;
  }

  /** Reserves one failure for `client` and `user`, or throws ClientRateLimitedError. */
  reserve(client: string, user: string): Reservation {
    const now = Date.now();
    const userKey = createHmac('sha256', this.#userKey).update(user).digest('base64');
    const clientWindow = this.#current(this.#byClient, client, now);
    const userWindow = this.#current(this.#byUser, userKey, now);
    const full = [clientWindow.count >= this.#limits.perClient && clientWindow, userWindow.count >= this.#limits.perUser && userWindow].filter((window): window is Window => !!window);
    if (full.length > 0) {
      const endsAt = Math.max(...full.map((window) => window.endsAt));
      throw new ClientRateLimitedError('too many failed logins; retry later', Math.max(1, Math.ceil((endsAt - now) / 1000)));
    }
    const firstFromClient = clientWindow.count === 0;
    clientWindow.count += 1;
    userWindow.count += 1;
    const refund = () => {
      clientWindow.count = Math.max(0, clientWindow.count - 1);
      userWindow.count = Math.max(0, userWindow.count - 1);
    };
    return { refund, firstFromClient };
  }

  /** The window for `key`, started now when there is none or the last one ended. */
  #current(table: LRUCache<string, Window>, key: string, now: number): Window {
    const existing = table.get(key);
    if (existing && existing.endsAt > now) return existing;
    const window = { count: 0, endsAt: now + this.#limits.windowMs };
    table.set(key, window);
    return window;
  }
}
