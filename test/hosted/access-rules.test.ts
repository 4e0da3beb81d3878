/**
 * Access decisions (src/hosted/access-rules.ts), as a table: user, repository, action, policy
 * -> allowed. Then the config parsing, whose errors name the key.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/mirror-config.js';
import { hostedTarget, proxiedTarget, type RepositoryTarget } from '../../src/domain/target.js';
import { allowed, parseAccessPolicy, type AccessAction, type AccessConfig } from '../../src/hosted/access-rules.js';

const HTPASSWD = '/etc/registry-mirror/htpasswd';
const teamApp = hostedTarget('team/app');
const myImage = hostedTarget('my-image');
const otherHosted = hostedTarget('other/thing');
const alpine = proxiedTarget('docker.io', 'library/alpine');
const distroless = proxiedTarget('gcr.io', 'distroless/static');

const policies = {
  open: parseAccessPolicy({}),
  lab: parseAccessPolicy({ hosted: { allowAnonymousPush: true } }),
  htpasswd: parseAccessPolicy({ auth: { htpasswd: HTPASSWD } }),
  rules: parseAccessPolicy({
    auth: {
      htpasswd: HTPASSWD,
      access: [
        { users: ['*'], repositories: ['docker.io/**', 'team/**'], actions: ['pull'] },
        { users: ['ci'], repositories: ['team/**'], actions: ['pull', 'push'] },
        { users: ['admin'], repositories: ['**'], actions: ['pull', 'push', 'delete'] },
      ],
    },
    // Anonymous push means nothing once clients authenticate.
    hosted: { allowAnonymousPush: true },
  }),
};

type Row = [keyof typeof policies, string | undefined, RepositoryTarget, AccessAction, boolean];

const table: Row[] = [
  // No htpasswd: anonymous reads; pushes only with allowAnonymousPush; deletes never.
  ['open', undefined, alpine, 'pull', true],
  ['open', undefined, teamApp, 'pull', true],
  ['open', undefined, teamApp, 'push', false],
  ['open', undefined, teamApp, 'delete', false],
  ['lab', undefined, teamApp, 'push', true],
  ['lab', undefined, myImage, 'push', true],
  ['lab', undefined, teamApp, 'delete', false],
  ['lab', undefined, alpine, 'push', false],
  // htpasswd without rules: any authenticated user pulls anything, writes hosted names.
  ['htpasswd', undefined, alpine, 'pull', false],
  ['htpasswd', undefined, teamApp, 'pull', false],
  ['htpasswd', 'alice', alpine, 'pull', true],
  ['htpasswd', 'alice', teamApp, 'pull', true],
  ['htpasswd', 'alice', teamApp, 'push', true],
  ['htpasswd', 'alice', teamApp, 'delete', true],
  ['htpasswd', 'alice', alpine, 'push', false],
  ['htpasswd', 'alice', alpine, 'delete', false],
  // Rules: only what a rule grants; "*" is any authenticated user, never anonymous.
  ['rules', undefined, alpine, 'pull', false],
  ['rules', undefined, teamApp, 'push', false],
  ['rules', 'alice', alpine, 'pull', true],
  ['rules', 'alice', distroless, 'pull', false],
  ['rules', 'alice', teamApp, 'pull', true],
  ['rules', 'alice', teamApp, 'push', false],
  ['rules', 'alice', myImage, 'pull', false],
  ['rules', 'ci', teamApp, 'push', true],
  ['rules', 'ci', hostedTarget('team'), 'push', true],
  ['rules', 'ci', hostedTarget('team/a/b'), 'push', true],
  ['rules', 'ci', myImage, 'push', false],
  ['rules', 'ci', teamApp, 'delete', false],
  ['rules', 'ci', distroless, 'pull', false],
  ['rules', 'admin', otherHosted, 'delete', true],
  ['rules', 'admin', distroless, 'pull', true],
  // Even a rule granting push on every name never lets a write reach a proxied one.
  ['rules', 'admin', alpine, 'push', false],
  ['rules', 'admin', distroless, 'delete', false],
];

describe('allowed(user, repository, action, policy)', () => {
  for (const [policy, user, target, action, expected] of table) {
    const name = target.kind === 'proxy' ? `${target.upstream}/${target.repository} (proxied)` : `${target.repository} (hosted)`;
    it(`${policy}: ${user ?? 'anonymous'} ${expected ? 'may' : 'may not'} ${action} ${name}`, () => {
      expect(allowed(user, target, action, policies[policy])).toBe(expected);
    });
  }

  it('rules match proxied names by upstream key, however the client spelled them', () => {
    const policy = parseAccessPolicy({ auth: { htpasswd: HTPASSWD, access: [{ users: ['bob'], repositories: ['docker.io/library/*'], actions: ['pull'] }] } });
    expect(allowed('bob', proxiedTarget('docker.io', 'library/alpine'), 'pull', policy)).toBe(true);
    expect(allowed('bob', proxiedTarget('docker.io', 'myorg/app'), 'pull', policy)).toBe(false);
    expect(allowed('bob', hostedTarget('library/alpine'), 'pull', policy)).toBe(false);
  });
});

describe('parseAccessPolicy: config errors name the key', () => {
  const refused: Array<[string, AccessConfig, RegExp]> = [
    ['auth.access without htpasswd', { auth: { access: [] } }, /^auth\.access: access rules name authenticated users, so they need auth\.htpasswd/],
    ['auth.access not an array', { auth: { htpasswd: HTPASSWD, access: {} } }, /^auth\.access: expected an array of rules/],
    ['a rule that is a string', { auth: { htpasswd: HTPASSWD, access: ['alice'] } }, /^auth\.access\[0\]: expected an object/],
    ['an unknown rule key', { auth: { htpasswd: HTPASSWD, access: [{ users: ['*'], repos: ['**'], actions: ['pull'] }] } }, /^auth\.access\[0\]: unknown key "repos"/],
    ['no users', { auth: { htpasswd: HTPASSWD, access: [{ users: [], repositories: ['**'], actions: ['pull'] }] } }, /^auth\.access\[0\]\.users: expected a non-empty array, got \[\]/],
    ['a user number', { auth: { htpasswd: HTPASSWD, access: [{ users: [7], repositories: ['**'], actions: ['pull'] }] } }, /^auth\.access\[0\]\.users\[0\]: expected a non-empty string, got 7/],
    ['a user with a colon', { auth: { htpasswd: HTPASSWD, access: [{ users: ['a:b'], repositories: ['**'], actions: ['pull'] }] } }, /^auth\.access\[0\]\.users\[0\]: "a:b" cannot be an htpasswd user name/],
    ['no repositories', { auth: { htpasswd: HTPASSWD, access: [{ users: ['*'], actions: ['pull'] }] } }, /^auth\.access\[0\]\.repositories: expected a non-empty array, got nothing/],
    ['a bad pattern', { auth: { htpasswd: HTPASSWD, access: [{ users: ['*'], repositories: ['ok', 'team-*'], actions: ['pull'] }] } }, /^auth\.access\[0\]\.repositories\[1\]: "team-\*"/],
    ['an unknown action', { auth: { htpasswd: HTPASSWD, access: [{ users: ['*'], repositories: ['**'], actions: ['pull', 'write'] }] } }, /^auth\.access\[0\]\.actions\[1\]: expected one of "pull", "push", "delete", got "write"/],
    ['allowAnonymousPush a string', { hosted: { allowAnonymousPush: 'yes' } }, /^hosted\.allowAnonymousPush: expected true or false, got "yes"/],
  ];
  for (const [what, config, message] of refused) {
    it(`refuses ${what}`, () => {
      expect(() => parseAccessPolicy(config)).toThrow(ConfigError);
      expect(() => parseAccessPolicy(config)).toThrow(message);
    });
  }

  it('reads the defaults: no authentication, no rules, no anonymous push', () => {
    expect(parseAccessPolicy({})).toEqual({ authentication: false, allowAnonymousPush: false });
    const policy = parseAccessPolicy({ auth: { htpasswd: HTPASSWD, access: [{ users: ['*', 'x'], repositories: ['**'], actions: ['pull'] }] } });
    expect(policy.rules?.[0]?.users).toEqual(new Set(['*', 'x']));
    expect(policy.rules?.[0]?.actions).toEqual(new Set(['pull']));
  });

  it('an empty rule list grants nothing to anyone', () => {
    const policy = parseAccessPolicy({ auth: { htpasswd: HTPASSWD, access: [] } });
    for (const action of ['pull', 'push', 'delete'] as const) expect(allowed('alice', teamApp, action, policy)).toBe(false);
  });
});
