/**
 * `WWW-Authenticate` from upstreams (upstream/auth-challenge.ts, RFC 9110 section 11.6.1) and
 * the registry a client names with `?ns=` or a path prefix (upstream/upstream-router.ts,
 * domain/registry-host.ts). Valid input round-trips; anything else is understood as far as it
 * goes (challenges) or refused with NAME_INVALID / NAME_UNKNOWN (routing), never a TypeError.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NameInvalidError, NameUnknownError } from '../../src/domain/errors.js';
import { assertRepositoryName } from '../../src/domain/reference.js';
import { isRegistryHost } from '../../src/domain/registry-host.js';
import { chooseRegistryChallenge, parseAuthChallenges, type AuthChallenge } from '../../src/upstream/auth-challenge.js';
import { UpstreamRouter } from '../../src/upstream/upstream-router.js';
import { FUZZ, PATHOLOGICAL_MS, hostile, outcomeOf, repositoryName, timeOf } from './fuzz-support.js';

const TCHARS = [..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"];
const token = fc.string({ unit: fc.constantFrom(...TCHARS), minLength: 1, maxLength: 12 });
/** Parameter names, including ones that are also names on Object.prototype. */
const paramName = fc.oneof(token, fc.constantFrom('realm', 'service', 'scope', 'error', 'constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'));
/** quoted-string content: any visible character or space, quotes and backslashes escaped when sent. */
const quotedValue = fc.string({ unit: fc.constantFrom(...TCHARS, ' ', '\t', '"', '\\', ',', '=', '/', ':', '?', '(', ')', '\u00e9'), maxLength: 30 });
const challenge = fc.record({
  scheme: token,
  params: fc.uniqueArray(fc.tuple(paramName, fc.oneof(token, quotedValue), fc.boolean()), { selector: ([name]) => name.toLowerCase(), maxLength: 5 }),
});
type GeneratedChallenge = { scheme: string; params: Array<[string, string, boolean]> };

/** As a server writes it: `Scheme a=token, b="quoted \"value\""`, challenges separated by ", ". */
function formatChallenges(challenges: GeneratedChallenge[]): string {
  return challenges.map(({ scheme, params }) => {
    const list = params.map(([name, value, quote]) => {
      const bare = !quote && /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(value);
      return `${name}=${bare ? value : `"${value.replace(/(["\\])/g, '\\$1')}"`}`;
    });
    return list.length > 0 ? `${scheme} ${list.join(', ')}` : scheme;
  }).join(', ');
}

function expected(challenges: GeneratedChallenge[]): AuthChallenge[] {
  return challenges.map(({ scheme, params }) => ({ scheme: scheme.toLowerCase(), params: Object.fromEntries(params.map(([name, value]) => [name.toLowerCase(), value])) }));
}

function plain(challenges: AuthChallenge[]): unknown {
  return challenges.map((entry) => ({ ...entry, params: { ...Object.fromEntries(Object.entries(entry.params)) } }));
}

describe('WWW-Authenticate', () => {
  it('round-trips challenges with token and quoted-string parameters', () => {
    // A scheme directly followed by a bare "name=value" reads as token68 (RFC 9110 allows
    // both), so the first parameter of each challenge is quoted here.
    const generated = fc.array(challenge, { minLength: 1, maxLength: 3 }).map((list) => list.map(({ scheme, params }) => ({ scheme, params: params.map(([name, value, quote], index) => [name, value, quote || index === 0] as [string, string, boolean]) })));
    fc.assert(fc.property(generated, (challenges) => {
      expect(plain(parseAuthChallenges(formatChallenges(challenges)))).toEqual(expected(challenges));
    }), FUZZ);
  });

  it('never throws on any header, and chooses a challenge only with a realm', () => {
    const valid = fc.array(challenge, { minLength: 1, maxLength: 3 }).map(formatChallenges);
    fc.assert(fc.property(fc.oneof(hostile(valid), fc.array(hostile(valid), { maxLength: 3 })), (header) => {
      const challenges = parseAuthChallenges(header);
      const chosen = chooseRegistryChallenge(challenges);
      if (chosen?.scheme === 'bearer') expect(typeof chosen.realm === 'string' && chosen.realm.length > 0).toBe(true);
      for (const entry of challenges) for (const value of Object.values(entry.params)) expect(typeof value).toBe('string');
    }), FUZZ);
  });

  it('answers pathological headers quickly', () => {
    const headers = [
      `Bearer ${'a'.repeat(50_000)}!`,
      `Bearer realm="${'\\"'.repeat(25_000)}`,
      'a '.repeat(25_000),
      `Bearer ${'a=b, '.repeat(12_500)}`,
      `${'Basic, '.repeat(7_000)}`,
      `Bearer ${' '.repeat(50_000)}x`,
    ];
    for (const header of headers) expect(timeOf(() => parseAuthChallenges(header))).toBeLessThan(PATHOLOGICAL_MS);
  });
});

describe('registry hosts: ?ns= and path prefixes', () => {
  const upstreams = ['docker.io', 'gcr.io', 'registry.example.com', 'localhost:5000', 'quay.io:443'];
  const router = new UpstreamRouter(upstreams, 'docker.io');
  /** A configured host as a client may spell it: any case, Docker Hub's aliases. */
  const configured = fc.tuple(fc.constantFrom(...upstreams, 'index.docker.io', 'registry-1.docker.io'), fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }))
    .map(([host, upper]) => [...host].map((char, i) => (upper[i] ? char.toUpperCase() : char)).join(''));
  const upstreamOf = (host: string) => {
    const lower = host.toLowerCase();
    return lower === 'index.docker.io' || lower === 'registry-1.docker.io' ? 'docker.io' : lower;
  };
  const expectedRepository = (upstream: string, name: string) => (upstream === 'docker.io' && !name.includes('/') ? `library/${name}` : name);

  it('routes a configured registry named by ?ns= or a path prefix, in any case', () => {
    fc.assert(fc.property(configured, repositoryName, (host, name) => {
      const upstream = upstreamOf(host);
      const repository = expectedRepository(upstream, name);
      expect(router.route(name, host)).toEqual({ kind: 'proxy', upstream, repository });
      if (`${host}/${name}`.length <= 255) expect(router.route(`${host.toLowerCase()}/${name}`, undefined)).toEqual({ kind: 'proxy', upstream, repository });
    }), FUZZ);
  });

  it('refuses anything else with NAME_INVALID or NAME_UNKNOWN, and routes only to configured upstreams', () => {
    const ns = fc.option(hostile(configured), { nil: undefined });
    const name = hostile(fc.oneof(repositoryName, fc.tuple(configured, repositoryName).map(([host, rest]) => `${host}/${rest}`)));
    fc.assert(fc.property(name, ns, (requested, namespace) => {
      const result = outcomeOf(() => router.route(requested, namespace), [NameInvalidError, NameUnknownError], { requested, namespace });
      if (result instanceof Error) return;
      expect(upstreams).toContain(result.upstream);
      expect(assertRepositoryName(result.repository)).toBe(result.repository);
    }), FUZZ);
  });

  it('accepts DNS names with an optional port as registry hosts, and nothing with other characters', () => {
    fc.assert(fc.property(fc.domain(), fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), (domain, port) => {
      const host = port === undefined ? domain : `${domain}:${port}`;
      expect(isRegistryHost(host)).toBe(host.length <= 253 && domain.includes('.'));
    }), FUZZ);
    fc.assert(fc.property(hostile(fc.domain()), (text) => {
      if (isRegistryHost(text)) expect(text).toMatch(/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$/);
    }), FUZZ);
  });

  it('answers pathological host names quickly', () => {
    for (const host of [`${'a'.repeat(63)}.`.repeat(4_000), `${'a-'.repeat(100_000)}.io`, `${'a.'.repeat(126)}a:${'9'.repeat(100_000)}`]) {
      expect(timeOf(() => isRegistryHost(host))).toBeLessThan(PATHOLOGICAL_MS);
      expect(timeOf(() => router.route(`${host}/a`, undefined))).toBeLessThan(PATHOLOGICAL_MS);
      expect(timeOf(() => router.route('a', host))).toBeLessThan(PATHOLOGICAL_MS);
    }
  });
});
