/**
 * Who may pull, push and delete what (issue 14, "Access"). One pure decision, `allowed`, over a
 * policy read from the config once:
 *
 *   auth.htpasswd   auth.access   pull                push / delete
 *   no              (refused)     anyone              push: hosted names, only if hosted.allowAnonymousPush;
 *                                                     delete: never (configure htpasswd to delete)
 *   yes             absent        any authenticated   any authenticated, hosted names
 *   yes             rules         what a rule grants  what a rule grants, hosted names
 *
 * A write to a proxied name is never allowed, whatever the rules say: a name is hosted or
 * proxied, never both, and proxied content is the upstream's (DESIGN.md "Hosted next to proxied").
 * Rules match the repository's metadata key (domain/target.ts `repositoryKey`): `team/app` for
 * hosted names, `<upstream>/<repository>` for proxied ones (`docker.io/library/*`), so a rule means
 * the same however a client spelled the name (path prefix, `?ns=`, default upstream).
 * Each action is granted on its own: a client that pushes also reads (blob HEAD before upload,
 * `from` of a mount), so pushers normally need `["pull", "push"]`.
 */
import { ConfigError } from '../config/config-error.js';
import { repositoryKey, type RepositoryTarget } from '../domain/target.js';
import { RepositoryPatterns } from './repository-patterns.js';

export const ACCESS_ACTIONS = ['pull', 'push', 'delete'] as const;
export type AccessAction = (typeof ACCESS_ACTIONS)[number];

/** `"*"` in `users`: any authenticated user (never an anonymous one). */
export const ANY_AUTHENTICATED_USER = '*';

export interface AccessRule {
  /** User names, or ANY_AUTHENTICATED_USER among them. */
  readonly users: ReadonlySet<string>;
  readonly repositories: RepositoryPatterns;
  readonly actions: ReadonlySet<AccessAction>;
}

export interface AccessPolicy {
  /** `auth.htpasswd` is set: every client authenticates. */
  readonly authentication: boolean;
  /** `auth.access`; undefined when the key is absent. */
  readonly rules?: readonly AccessRule[];
  /** `hosted.allowAnonymousPush` (default false). */
  readonly allowAnonymousPush: boolean;
}

/** `user` is the authenticated user name (clientAuth's `clientUser`), undefined for anonymous requests. */
export function allowed(user: string | undefined, target: RepositoryTarget, action: AccessAction, policy: AccessPolicy): boolean {
  if (action !== 'pull' && target.kind !== 'hosted') return false;
  if (!policy.authentication) return anonymousAllowed(action, policy);
  if (user === undefined) return false;
  return grantedByRules(user, repositoryKey(target), action, policy);
}

/**
 * What the rules grant an authenticated `user` on the repository with metadata key `key`,
 * hosted or proxied alike (without rules: everything). For keys met without a request naming
 * them: the repositories a cached digest is linked to (pull-through/content-grants.ts).
 */
export function grantedByRules(user: string, key: string, action: AccessAction, policy: AccessPolicy): boolean {
  return !policy.rules || policy.rules.some((rule) => grants(rule, user, key, action));
}

/** Under rules, which repository keys `user` may pull (the status names only those); undefined without rules. */
export function pullableBy(policy: AccessPolicy): ((user: string | undefined) => (key: string) => boolean) | undefined {
  if (!policy.authentication || !policy.rules) return undefined;
  return (user) => (key) => user !== undefined && grantedByRules(user, key, 'pull', policy);
}

function anonymousAllowed(action: AccessAction, policy: AccessPolicy): boolean {
  if (action === 'pull') return true;
  return action === 'push' && policy.allowAnonymousPush;
}

function grants(rule: AccessRule, user: string, key: string, action: AccessAction): boolean {
  return rule.actions.has(action) && (rule.users.has(ANY_AUTHENTICATED_USER) || rule.users.has(user)) && rule.repositories.matches(key);
}

/** The config keys the policy is read from (plain data, already schema-checked or not). */
export interface AccessConfig {
  auth?: { htpasswd?: unknown; access?: unknown };
  hosted?: { allowAnonymousPush?: unknown };
}

/** Reads the policy; ConfigError names the key of anything unusable. */
export function parseAccessPolicy(config: AccessConfig): AccessPolicy {
  const authentication = config.auth?.htpasswd !== undefined && config.auth.htpasswd !== null;
  const allowAnonymousPush = config.hosted?.allowAnonymousPush ?? false;
  if (typeof allowAnonymousPush !== 'boolean') throw new ConfigError(`hosted.allowAnonymousPush: expected true or false, got ${JSON.stringify(allowAnonymousPush)}`);
  const access = config.auth?.access;
  if (access === undefined || access === null) return { authentication, allowAnonymousPush };
  if (!authentication) {
    throw new ConfigError('auth.access: access rules name authenticated users, so they need auth.htpasswd; set auth.htpasswd or remove auth.access');
  }
  if (!Array.isArray(access)) throw new ConfigError(`auth.access: expected an array of rules like {"users": ["*"], "repositories": ["team/**"], "actions": ["pull", "push"]}`);
  return { authentication, allowAnonymousPush, rules: access.map((rule, index) => parseRule(rule, `auth.access[${index}]`)) };
}

const RULE_KEYS = ['users', 'repositories', 'actions'];

function parseRule(value: unknown, key: string): AccessRule {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(`${key}: expected an object with users, repositories and actions`);
  const rule = value as Record<string, unknown>;
  const unknown = Object.keys(rule).filter((name) => !RULE_KEYS.includes(name));
  if (unknown.length > 0) throw new ConfigError(`${key}: unknown key ${JSON.stringify(unknown[0])} (a rule has ${RULE_KEYS.join(', ')})`);
  const users = nonEmptyStrings(rule.users, `${key}.users`);
  users.forEach((user, index) => {
    if (user.includes(':')) throw new ConfigError(`${key}.users[${index}]: ${JSON.stringify(user)} cannot be an htpasswd user name (it contains ":")`);
  });
  const repositories = RepositoryPatterns.parse(nonEmptyArray(rule.repositories, `${key}.repositories`), `${key}.repositories`);
  const actions = nonEmptyStrings(rule.actions, `${key}.actions`).map((action, index) => {
    if (!(ACCESS_ACTIONS as readonly string[]).includes(action)) {
      throw new ConfigError(`${key}.actions[${index}]: expected one of ${ACCESS_ACTIONS.map((name) => `"${name}"`).join(', ')}, got ${JSON.stringify(action)}`);
    }
    return action as AccessAction;
  });
  return { users: new Set(users), repositories, actions: new Set(actions) };
}

function nonEmptyArray(value: unknown, key: string): unknown[] {
  if (!Array.isArray(value) || value.length === 0) throw new ConfigError(`${key}: expected a non-empty array, got ${JSON.stringify(value) ?? 'nothing'}`);
  return value;
}

function nonEmptyStrings(value: unknown, key: string): string[] {
  return nonEmptyArray(value, key).map((entry, index) => {
    if (typeof entry !== 'string' || entry === '') throw new ConfigError(`${key}[${index}]: expected a non-empty string, got ${JSON.stringify(entry)}`);
    return entry;
  });
}
