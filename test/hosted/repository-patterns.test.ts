/**
 * Repository glob patterns (src/hosted/repository-patterns.ts): `*` one component, `**` any
 * number including zero, literals otherwise; config errors name the key. Properties compare the
 * matcher with a naive recursive definition and check the documented laws.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/mirror-config.js';
import { assertRepositoryName } from '../../src/domain/reference.js';
import { RepositoryPattern, RepositoryPatterns } from '../../src/hosted/repository-patterns.js';

const matches = (pattern: string, name: string) => RepositoryPattern.parse(pattern, 'hosted.repositories[0]').matches(name);

describe('matching', () => {
  const table: Array<[string, string, boolean]> = [
    ['team/**', 'team/app', true],
    ['team/**', 'team/a/b', true],
    ['team/**', 'team', true],
    ['team/**', 'teams/app', false],
    ['team/**', 'other/team/app', false],
    ['team/*', 'team/app', true],
    ['team/*', 'team/a/b', false],
    ['team/*', 'team', false],
    ['*', 'my-image', true],
    ['*', 'team/app', false],
    ['**', 'my-image', true],
    ['**', 'a/b/c/d', true],
    ['my-image', 'my-image', true],
    ['my-image', 'my-image2', false],
    ['my-image', 'team/my-image', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/x/y/c', false],
    ['**/app', 'app', true],
    ['**/app', 'team/app', true],
    ['**/app', 'team/app/x', false],
    ['*/*/app', 'a/b/app', true],
    ['*/*/app', 'a/app', false],
    ['docker.io/library/*', 'docker.io/library/alpine', true],
    ['docker.io/library/*', 'docker.io/myorg/app', false],
    ['team/**/**', 'team', true],
  ];
  for (const [pattern, name, expected] of table) {
    it(`${pattern} ${expected ? 'matches' : 'does not match'} ${name}`, () => expect(matches(pattern, name)).toBe(expected));
  }

  it('a list matches when any pattern does, and says which', () => {
    const list = RepositoryPatterns.parse(['team/**', 'my-image'], 'hosted.repositories');
    expect(list.matches('my-image')).toBe(true);
    expect(list.matches('team/x/y')).toBe(true);
    expect(list.matches('library/alpine')).toBe(false);
    expect(list.firstMatch('team/app')).toBe('team/**');
    expect(list.firstMatch('library/alpine')).toBeUndefined();
    expect(list.describe()).toBe('"team/**", "my-image"');
    expect(RepositoryPatterns.parse([], 'hosted.repositories').matches('anything')).toBe(false);
    expect(RepositoryPatterns.none().describe()).toBe('(none)');
  });
});

describe('config errors name the key and the problem', () => {
  const refused: Array<[unknown, RegExp]> = [
    ['', /hosted\.repositories\[1\]: "": a repository pattern cannot be empty/],
    ['/team/**', /hosted\.repositories\[1\]: "\/team\/\*\*": no leading or trailing "\/"/],
    ['team/', /no leading or trailing "\/"/],
    ['team//app', /component 2 is empty/],
    ['team-*', /"team-\*": "\*" and "\*\*" must be whole components/],
    ['team/***', /"\*\*\*": "\*" and "\*\*" must be whole components/],
    ['Team/app', /"Team" is not a repository name component/],
    ['team/app:v1', /"app:v1" is not a repository name component/],
    ['team/-app', /"-app" is not a repository name component/],
    ['a'.repeat(256), /longer than a repository name can be \(255 characters\)/],
    [7, /hosted\.repositories\[1\]: expected a repository pattern string, got 7/],
    [null, /expected a repository pattern string, got null/],
  ];
  for (const [pattern, message] of refused) {
    it(`refuses ${JSON.stringify(pattern).slice(0, 40)}`, () => {
      expect(() => RepositoryPatterns.parse(['ok', pattern], 'hosted.repositories')).toThrow(ConfigError);
      expect(() => RepositoryPatterns.parse(['ok', pattern], 'hosted.repositories')).toThrow(message);
    });
  }

  it('refuses a value that is not an array, naming the key', () => {
    expect(() => RepositoryPatterns.parse('team/**', 'auth.access[0].repositories')).toThrow(/^auth\.access\[0\]\.repositories: expected an array of repository patterns/);
  });
});

describe('properties', () => {
  const component = fc.constantFrom('a', 'b', 'team', 'app');
  const names = fc.array(component, { minLength: 1, maxLength: 6 });
  const patterns = fc.array(fc.constantFrom('a', 'b', 'team', '*', '**'), { minLength: 1, maxLength: 6 });

  /** The definition, written as plainly as possible: exponential, fine for short inputs. */
  function naive(pattern: string[], name: string[]): boolean {
    const [head, ...rest] = pattern;
    if (head === undefined) return name.length === 0;
    if (head === '**') return naive(rest, name) || (name.length > 0 && naive(pattern, name.slice(1)));
    if (name.length === 0) return false;
    return (head === '*' || head === name[0]) && naive(rest, name.slice(1));
  }

  it('agrees with the naive definition', () => {
    fc.assert(fc.property(patterns, names, (pattern, name) => matches(pattern.join('/'), name.join('/')) === naive(pattern, name)), { numRuns: 2000 });
  });

  const validNames = fc.array(fc.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)?$/), { minLength: 1, maxLength: 5 }).map((parts) => parts.join('/')).filter((name) => name.length <= 255);

  it('a name used as a pattern matches itself and only itself', () => {
    fc.assert(fc.property(validNames, validNames, (name, other) => {
      assertRepositoryName(name);
      return matches(name, name) && matches(name, other) === (name === other);
    }));
  });

  it('"**" matches every name; "<prefix>/**" every name under the prefix, the prefix itself included', () => {
    fc.assert(fc.property(validNames, validNames, (prefix, rest) => matches('**', rest) && matches(`${prefix}/**`, prefix) && matches(`${prefix}/**`, `${prefix}/${rest}`)));
  });

  it('replacing any one component by "*" still matches; a name with another number of components never does', () => {
    fc.assert(fc.property(validNames, fc.nat(), validNames, (name, which, other) => {
      const parts = name.split('/');
      parts[which % parts.length] = '*';
      const pattern = parts.join('/');
      return matches(pattern, name) && (other.split('/').length === parts.length || !matches(pattern, other));
    }));
  });

  it('a long name against many "**" is decided (a backtracking matcher would not finish before the test deadline)', () => {
    const name = Array.from({ length: 60 }, () => 'a').join('/');
    expect(matches(`${Array.from({ length: 30 }, () => '**').join('/')}/b`, name)).toBe(false);
    expect(matches(`${Array.from({ length: 30 }, () => '**').join('/')}/a`, name)).toBe(true);
  });
});
