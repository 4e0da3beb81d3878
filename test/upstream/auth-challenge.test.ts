import { describe, expect, it } from 'vitest';
import { chooseRegistryChallenge, parseAuthChallenges } from '../../src/upstream/auth-challenge.js';

describe('parseAuthChallenges', () => {
  it('parses a Docker Hub bearer challenge', () => {
    const header = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"';
    expect(parseAuthChallenges(header)).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } },
    ]);
  });

  it('keeps commas inside quoted strings and unescapes quoted pairs', () => {
    const header = 'Bearer realm="https://a.example/t?x=1,2", scope="repository:a:pull,push", error="say \\"hi\\" \\\\ ok"';
    expect(parseAuthChallenges(header)[0]!.params).toEqual({
      realm: 'https://a.example/t?x=1,2',
      scope: 'repository:a:pull,push',
      error: 'say "hi" \\ ok',
    });
  });

  it('separates several challenges in one header (RFC 9110 section 11.6.1 example)', () => {
    const header = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"';
    expect(parseAuthChallenges(header)).toEqual([
      { scheme: 'newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
      { scheme: 'basic', params: { realm: 'simple' } },
    ]);
  });

  it('accepts several header lines, case-insensitive names, whitespace around "=" and token68', () => {
    const challenges = parseAuthChallenges(['Negotiate abc+/def==, BASIC Realm = "r"', 'bearer REALM=https://t.example/token']);
    expect(challenges).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'abc+/def==' },
      { scheme: 'basic', params: { realm: 'r' } },
      { scheme: 'bearer', params: { realm: 'https://t.example/token' } },
    ]);
  });

  it('returns what it understood from malformed input and nothing for empty input', () => {
    expect(parseAuthChallenges(undefined)).toEqual([]);
    expect(parseAuthChallenges('')).toEqual([]);
    expect(parseAuthChallenges('realm="x"')).toEqual([]);
    expect(parseAuthChallenges('Bearer realm="x", @@@')).toEqual([{ scheme: 'bearer', params: { realm: 'x' } }]);
  });
});

describe('chooseRegistryChallenge', () => {
  it('prefers Bearer with a realm, then Basic', () => {
    expect(chooseRegistryChallenge(parseAuthChallenges('Basic realm="x", Bearer realm="https://t/", service="s"'))).toEqual({
      scheme: 'bearer',
      realm: 'https://t/',
      service: 's',
    });
    expect(chooseRegistryChallenge(parseAuthChallenges('Bearer service="s", Basic realm="x"'))).toEqual({ scheme: 'basic' });
    expect(chooseRegistryChallenge(parseAuthChallenges('Negotiate abc'))).toBeUndefined();
  });
});
