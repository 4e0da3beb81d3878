/**
 * Authentication for the fake upstream, shaped like Docker Hub: the registry answers 401 with a
 * Bearer challenge (distribution "Token Authentication Specification"), a separate token server
 * checks optional Basic credentials and issues opaque tokens that the registry later checks for
 * `repository:<name>:pull`. Tokens are remembered here with their grants and expiry, so an
 * expired or revoked token is refused exactly like an unknown one.
 */
import { randomBytes } from 'node:crypto';
import { type Exchange, type Fault, sendBody, sendError, sendStatusFault } from './fake-registry-wire.js';

export type AuthMode = 'none' | 'bearer' | 'basic';

export interface AuthSettings {
  mode: AuthMode;
  users: Record<string, string>;
  privatePrefixes: string[];
  tokenTtlSeconds: number;
  service: string;
  /** Filled in once the token server listens. */
  tokenUrl: string;
}

interface IssuedToken {
  repos: Set<string>;
  expiresAt: number;
}

const BASIC_REALM = 'fake';

export class FakeAuth {
  readonly #settings: AuthSettings;
  readonly #tokens = new Map<string, IssuedToken>();

  constructor(settings: AuthSettings) {
    this.#settings = settings;
  }

  /** Forgets every issued token, as if they all expired at once. */
  revokeTokens(): void {
    this.#tokens.clear();
  }

  /** True when the request may read `repo` (undefined: the `/v2/` base check); otherwise a 401 was sent. */
  authorize(exchange: Exchange, repo: string | undefined): boolean {
    const header = exchange.req.headers.authorization;
    if (this.#settings.mode === 'none') return true;
    if (this.#settings.mode === 'basic') {
      if (this.#basicUser(header) !== undefined) return true;
      sendError(exchange, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': `Basic realm="${BASIC_REALM}"` });
      return false;
    }
    const problem = this.#bearerProblem(header, repo);
    if (problem === null) return true;
    sendError(exchange, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': this.#bearerChallenge(repo, problem) });
    return false;
  }

  /** `GET /token?service=...&scope=...` with optional Basic credentials. */
  handleTokenRequest(exchange: Exchange, fault: Fault | undefined): void {
    if (exchange.url.pathname !== '/token' || exchange.req.method !== 'GET') {
      sendError(exchange, 404, 'UNSUPPORTED', 'the token server answers GET /token only');
      return;
    }
    if (sendStatusFault(exchange, fault)) return;
    const header = exchange.req.headers.authorization;
    const user = this.#basicUser(header);
    if (header !== undefined && user === undefined) {
      sendError(exchange, 401, 'UNAUTHORIZED', 'incorrect username or password');
      return;
    }
    const service = exchange.url.searchParams.get('service');
    if (service !== null && service !== this.#settings.service) {
      sendError(exchange, 400, 'DENIED', `unknown service ${JSON.stringify(service)}`);
      return;
    }
    const token = this.#issue(exchange.url.searchParams.getAll('scope'), user !== undefined);
    const body = Buffer.from(JSON.stringify({ token, access_token: token, expires_in: this.#settings.tokenTtlSeconds, issued_at: new Date().toISOString() }));
    sendBody(exchange, 200, { 'content-type': 'application/json' }, body, fault);
  }

  #issue(scopes: string[], authenticated: boolean): string {
    const repos = new Set<string>();
    for (const scope of scopes.flatMap((value) => value.split(' '))) {
      const parsed = parseRepositoryScope(scope);
      if (parsed?.actions.includes('pull') && (authenticated || !this.#isPrivate(parsed.name))) repos.add(parsed.name);
    }
    const token = randomBytes(24).toString('hex');
    this.#tokens.set(token, { repos, expiresAt: Date.now() + this.#settings.tokenTtlSeconds * 1000 });
    return token;
  }

  #isPrivate(repo: string): boolean {
    return this.#settings.privatePrefixes.some((prefix) => repo.startsWith(prefix));
  }

  #basicUser(header: string | undefined): string | undefined {
    const match = header === undefined ? null : /^Basic\s+(\S+)$/i.exec(header);
    if (!match) return undefined;
    const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return undefined;
    const [user, password] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
    return Object.hasOwn(this.#settings.users, user) && this.#settings.users[user] === password ? user : undefined;
  }

  /** null when the token is good for `repo`; otherwise the RFC 6750 error to put in the challenge. */
  #bearerProblem(header: string | undefined, repo: string | undefined): 'missing' | 'invalid_token' | 'insufficient_scope' | null {
    const match = header === undefined ? null : /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) return 'missing';
    const issued = this.#tokens.get(match[1]!);
    if (!issued || Date.now() >= issued.expiresAt) return 'invalid_token';
    if (repo !== undefined && !issued.repos.has(repo)) return 'insufficient_scope';
    return null;
  }

  #bearerChallenge(repo: string | undefined, problem: 'missing' | 'invalid_token' | 'insufficient_scope'): string {
    const parts = [`Bearer realm="${this.#settings.tokenUrl}"`, `service="${this.#settings.service}"`];
    if (repo !== undefined) parts.push(`scope="repository:${repo}:pull"`);
    if (problem !== 'missing') parts.push(`error="${problem}"`);
    return parts.join(',');
  }
}

function parseRepositoryScope(scope: string): { name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first || scope.slice(0, first) !== 'repository') return undefined;
  return { name: scope.slice(first + 1, last), actions: scope.slice(last + 1).split(',') };
}
