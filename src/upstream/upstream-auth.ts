/**
 * What one upstream wants for authentication, learned from its first 401 and remembered, so
 * later requests (other repositories, other scopes) present a token up front instead of paying
 * another 401 round trip. Bearer tokens live in a TokenCache keyed by realm, service and scope.
 */
import { UnauthorizedError } from '../domain/errors.js';
import { chooseRegistryChallenge, parseAuthChallenges } from './auth-challenge.js';
import { trustedRealm } from './realm-trust.js';
import { TokenCache, type IssuedToken } from './token-cache.js';
import type { TokenRequest } from './token-endpoint.js';

export interface Credential {
  scheme: 'basic' | 'bearer';
  /** The Authorization header value. */
  header: string;
  /** Set for bearer tokens, to drop exactly this token if the upstream rejects it. */
  cacheKey?: string;
}

export interface UpstreamAuthOptions {
  upstreamName: string;
  upstreamUrl: URL;
  username?: string;
  password?: string;
  tokenRealms: readonly string[];
  requestToken: (request: TokenRequest) => Promise<IssuedToken>;
}

type LearnedChallenge = { scheme: 'bearer'; realm: URL; service: string | undefined } | { scheme: 'basic' };

export class UpstreamAuth {
  readonly #options: UpstreamAuthOptions;
  readonly #tokens = new TokenCache();
  #challenge: LearnedChallenge | undefined;

  constructor(options: UpstreamAuthOptions) {
    this.#options = options;
  }

  /** The credential for `scope` (`repository:NAME:pull`), or undefined before any challenge. */
  async credentialFor(scope: string): Promise<Credential | undefined> {
    const challenge = this.#challenge;
    if (challenge === undefined) return undefined;
    if (challenge.scheme === 'basic') {
      const header = this.#basicAuthorization();
      if (!header) throw new UnauthorizedError(`upstream ${this.#options.upstreamName} requires Basic credentials and none are configured`);
      return { scheme: 'basic', header };
    }
    const { realm, service } = challenge;
    const cacheKey = `${realm.href} ${service ?? ''} ${scope}`;
    const basicAuthorization = this.#basicAuthorization();
    const token = await this.#tokens.get(cacheKey, () => this.#options.requestToken({ realm, service, scope, basicAuthorization }));
    return { scheme: 'bearer', header: `Bearer ${token}`, cacheKey };
  }

  /** The upstream refused `credential`: a cached token must not be offered again. */
  forget(credential: Credential | undefined): void {
    if (credential?.cacheKey) this.#tokens.invalidate(credential.cacheKey, credential.header.slice('Bearer '.length));
  }

  /**
   * Remembers the challenge of a 401 for this and later requests. Throws UnauthorizedError when
   * it cannot be answered (no Bearer or Basic challenge, untrusted realm): no token is fetched.
   */
  learn(wwwAuthenticate: string | string[] | undefined): void {
    const challenge = chooseRegistryChallenge(parseAuthChallenges(wwwAuthenticate));
    const { upstreamName, upstreamUrl, tokenRealms } = this.#options;
    if (challenge === undefined) throw new UnauthorizedError(`upstream ${upstreamName} answered 401 without a Bearer or Basic challenge`);
    this.#challenge =
      challenge.scheme === 'basic'
        ? challenge
        : { scheme: 'bearer', realm: trustedRealm(challenge.realm, upstreamUrl, tokenRealms, upstreamName), service: challenge.service };
  }

  #basicAuthorization(): string | undefined {
    const { username, password } = this.#options;
    if (username === undefined) return undefined;
    return `Basic ${Buffer.from(`${username}:${password ?? ''}`, 'utf8').toString('base64')}`;
  }
}
