/**
 * Client credentials from an htpasswd file with bcrypt entries, as `htpasswd -B` writes them
 * (`user:$2y$05$...`). Other htpasswd formats (MD5 `$apr1$`, `{SHA}`, crypt) are weak and are
 * refused when the file is read, naming the line, rather than silently never matching.
 *
 * bcrypt is slow on purpose, which makes it a way to burn the mirror's CPU (issue 12 item 6).
 * A check goes through, in order:
 *   1. successes remembered for a short while (a `docker pull` sends the same credentials with
 *      every request), under an HMAC of user and password with a key made at start-up, never
 *      the password itself; bounded by entries and by time;
 *   2. an identical check already running: joined, not repeated (parallel layer downloads),
 *      through the same Flights as every other shared piece of work (coordination/flights.ts),
 *      keyed by that HMAC;
 *   3. the failure limits per client address and per user (auth-failure-limiter.ts): 429 past
 *      them, without a comparison;
 *   4. the comparison, in a worker thread (bcrypt-worker-pool.ts): 503 when its queue is full;
 *      checks from addresses without recent failures go first, so honest logins do not wait
 *      behind a flood's.
 * Unknown users are compared against a decoy hash of the same cost, so the answer time does
 * not tell which user names exist.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { LRUCache } from 'lru-cache';
import { ConfigError } from '../config/mirror-config.js';
import { LocalFlights, type Flights } from '../coordination/flights.js';
import { AuthFailureLimiter, type FailureLimits } from './auth-failure-limiter.js';
import { BcryptWorkerPool, type PasswordComparer } from './bcrypt-worker-pool.js';

const BCRYPT_HASH = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;
const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export interface HtpasswdOptions {
  /** How long a successful check is remembered; default 60 s. */
  rememberMs?: number;
  /** How many successful checks are remembered at most; default 10,000. */
  rememberMax?: number;
  /** Where bcrypt runs; default a BcryptWorkerPool of one worker. */
  comparer?: PasswordComparer & { close?(): Promise<void> };
  /** Failed checks allowed per client address and per user; see auth-failure-limiter.ts. */
  failureLimits?: Partial<FailureLimits>;
  /** Where identical concurrent checks are joined; default in-process flights of its own. */
  flights?: Flights;
}

/**
 * A check that takes longer than this has failed (the comparison waits in the workers' queue
 * behind at most their bound of others, each a fraction of a second).
 */
const CHECK_DEADLINE_MS = 30_000;

export class Htpasswd {
  readonly #hashes: Map<string, string>;
  readonly #remembered: LRUCache<string, true>;
  readonly #flights: Flights;
  readonly #cacheKey = randomBytes(32);
  readonly #decoy: string;
  readonly #comparer: PasswordComparer & { close?(): Promise<void> };
  readonly #failures: AuthFailureLimiter;

  constructor(hashes: Map<string, string>, options: HtpasswdOptions = {}) {
    this.#hashes = hashes;
    this.#remembered = new LRUCache({ max: options.rememberMax ?? 10_000, ttl: options.rememberMs ?? 60_000 });
    this.#comparer = options.comparer ?? new BcryptWorkerPool();
    this.#failures = new AuthFailureLimiter(options.failureLimits);
    this.#flights = options.flights ?? new LocalFlights();
    const firstHash = hashes.values().next().value;
    this.#decoy = decoyHash(firstHash ? Number(BCRYPT_HASH.exec(firstHash)?.[1] ?? 10) : 10);
  }

  /** Reads and checks the file; ConfigError names the file and line of anything unusable. */
  static async load(file: string, options: HtpasswdOptions = {}): Promise<Htpasswd> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      throw new ConfigError(`auth.htpasswd: cannot read ${file}: ${(error as Error).message}`);
    }
    return new Htpasswd(parseHtpasswd(text, file), options);
  }

  get userCount(): number {
    return this.#hashes.size;
  }

  /** Entries the failure limits hold (bounded; for tests). */
  get trackedFailureKeys(): number {
    return this.#failures.size;
  }

  /**
   * True or false; throws ClientRateLimitedError past the failure limits of `client` (an
   * address, http/client-address.ts) or `user`, ServerBusyError when the checks queue is full.
   */
  async verify(user: string, password: string, client: string): Promise<boolean> {
    // JSON keeps the boundary between user and password unambiguous (either may hold any byte).
    const key = createHmac('sha256', this.#cacheKey).update(JSON.stringify([user, password])).digest('base64');
    if (this.#remembered.has(key)) return true;
    return this.#flights.run(`password ${key}`, () => this.#check(key, user, password, client), { deadlineMs: CHECK_DEADLINE_MS });
  }

  async close(): Promise<void> {
    await this.#comparer.close?.();
  }

  /** One check: counted against the failure limits, compared, remembered when right. */
  async #check(key: string, user: string, password: string, client: string): Promise<boolean> {
    const { refund, firstFromClient } = this.#failures.reserve(client, user);
    let ok: boolean;
    try {
      ok = await this.#compare(user, password, firstFromClient);
    } catch (error) {
      // A check that failed to run (queue full, worker lost) was no wrong password.
      refund();
      throw error;
    }
    if (ok) {
      this.#remembered.set(key, true);
      refund();
    }
    return ok;
  }

  #compare(user: string, password: string, urgent: boolean): Promise<boolean> {
    return this.#comparer.compare(password, this.#hashes.get(user) ?? this.#decoy, { urgent });
  }
}

/**
 * A bcrypt hash of nothing anyone knows, of the given cost: comparing against it takes as long
 * as against a real entry, and never matches (its 31 hash characters are random, not derived).
 */
function decoyHash(cost: number): string {
  const random = [...randomBytes(53)].map((byte) => BCRYPT_ALPHABET[byte % 64]).join('');
  return `$2b$${String(cost).padStart(2, '0')}$${random}`;
}

export function parseHtpasswd(text: string, file: string): Map<string, string> {
  const hashes = new Map<string, string>();
  for (const [index, rawLine] of text.split(/\r?\n/).entries()) {
    const line = rawLine.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `auth.htpasswd: ${file} line ${index + 1}`;
    const colon = line.indexOf(':');
    if (colon <= 0) throw new ConfigError(`${where}: expected user:hash`);
    const user = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (!BCRYPT_HASH.test(hash)) {
      throw new ConfigError(`${where}: user ${JSON.stringify(user)} has no bcrypt hash; only bcrypt entries are supported (create them with htpasswd -B)`);
    }
    hashes.set(user, hash);
  }
  if (hashes.size === 0) throw new ConfigError(`auth.htpasswd: ${file} has no users`);
  return hashes;
}
