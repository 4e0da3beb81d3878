/**
 * Client credentials from an htpasswd file with bcrypt entries, as `htpasswd -B` writes them
 * (`user:$2y$05$...`). Other htpasswd formats (MD5 `$apr1$`, `{SHA}`, crypt) are weak and are
 * refused when the file is read, naming the line, rather than silently never matching.
 *
 * bcrypt is slow on purpose, and a `docker pull` sends the same credentials with every request,
 * so a successful check is remembered for a short while. The memory holds an HMAC of the
 * credentials under a key made at start-up, never the password. Failures are not remembered:
 * every guess pays the full bcrypt cost. Unknown users are checked against a decoy hash, so the
 * answer time does not tell which user names exist.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { LRUCache } from 'lru-cache';
import { ConfigError } from '../config/mirror-config.js';

const BCRYPT_HASH = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/;

export interface HtpasswdOptions {
  /** How long a successful check is remembered; default 60 s. */
  rememberMs?: number;
}

export class Htpasswd {
  readonly #hashes: Map<string, string>;
  readonly #remembered: LRUCache<string, true>;
  readonly #checking = new Map<string, Promise<boolean>>();
  readonly #cacheKey = randomBytes(32);
  readonly #decoyCost: number;
  #decoy: Promise<string> | undefined;

  constructor(hashes: Map<string, string>, options: HtpasswdOptions = {}) {
    this.#hashes = hashes;
    this.#remembered = new LRUCache({ max: 10_000, ttl: options.rememberMs ?? 60_000 });
    const firstHash = hashes.values().next().value;
    this.#decoyCost = firstHash ? Number(BCRYPT_HASH.exec(firstHash)![1]) : 10;
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

  async verify(user: string, password: string): Promise<boolean> {
    const key = createHmac('sha256', this.#cacheKey).update(user).update('\0').update(password).digest('base64');
    if (this.#remembered.has(key)) return true;
    // Parallel layer downloads arrive with the same credentials at once: check them once.
    const running = this.#checking.get(key);
    if (running) return running;
    const check = this.#compare(user, password).then((ok) => {
      if (ok) this.#remembered.set(key, true);
      return ok;
    }).finally(() => this.#checking.delete(key));
    this.#checking.set(key, check);
    return check;
  }

  async #compare(user: string, password: string): Promise<boolean> {
    const hash = this.#hashes.get(user);
    if (hash === undefined) {
      this.#decoy ??= bcrypt.hash(randomBytes(16).toString('hex'), this.#decoyCost);
      await bcrypt.compare(password, await this.#decoy);
      return false;
    }
    return bcrypt.compare(password, hash);
  }
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
