/**
 * The client configuration files shipped in deploy/clients/, rendered for a test: the mirror's
 * placeholder address becomes the address under test, and every real registry address becomes
 * the tripwire, so a client that falls back to "the registry itself" is caught, never sent out.
 * Each substitution must match, so a change to a deploy file cannot silently bypass the test.
 */
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { REPO_ROOT } from './mirror.js';

export const MIRROR_PLACEHOLDER = 'MIRROR_HOST:5000';
export const CLIENTS_DIR = join(REPO_ROOT, 'deploy', 'clients');

/** [text in the deploy file, what the test puts there]. */
type Substitution = readonly [string, string];

export function renderClientConfig(relativePath: string, mirrorHost: string, substitutions: Substitution[] = []): string {
  const path = join(CLIENTS_DIR, relativePath);
  let text = readFileSync(path, 'utf8');
  for (const [from, to] of [[MIRROR_PLACEHOLDER, mirrorHost] as const, ...substitutions]) {
    if (!text.includes(from)) throw new Error(`${path} no longer contains ${JSON.stringify(from)}; update the interop test with it`);
    text = text.split(from).join(to);
  }
  return text;
}

/** The shipped docker daemon.json, parsed, with the mirror's address in it. */
export function dockerDaemonJson(mirrorHost: string): Record<string, unknown> {
  return JSON.parse(renderClientConfig('docker/daemon.json', mirrorHost)) as Record<string, unknown>;
}

/** Registries whose hosts.toml directory is shipped, and the real server each one names. */
const CONTAINERD_SERVERS: Record<string, string | undefined> = {
  'docker.io': 'https://registry-1.docker.io',
  'gcr.io': 'https://gcr.io',
  _default: undefined,
};

/** Writes `<dir>/<registry>/hosts.toml` for the given shipped registries; returns `dir`. */
export function writeContainerdHostsDir(dir: string, mirrorHost: string, tripwireUrl: string, registries: string[]): string {
  for (const registry of registries) {
    if (!(registry in CONTAINERD_SERVERS)) throw new Error(`no shipped hosts.toml for ${registry}`);
    const server = CONTAINERD_SERVERS[registry];
    const substitutions: Substitution[] = server ? [[`server = "${server}"`, `server = "${tripwireUrl}"`]] : [];
    const file = join(dir, registry, 'hosts.toml');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, renderClientConfig(`containerd/certs.d/${registry}/hosts.toml`, mirrorHost, substitutions));
  }
  return dir;
}

/** podman's registries.conf, with each registry's own `location` sent to the tripwire. */
export function podmanRegistriesConf(mirrorHost: string, tripwireHost: string): string {
  return renderClientConfig('podman/registries.conf', mirrorHost, [
    ['location = "docker.io"', `location = "${tripwireHost}"\ninsecure = true`],
    ['location = "gcr.io"', `location = "${tripwireHost}"\ninsecure = true`],
  ]);
}

/** A copy of the shipped Kubernetes node snippet, for `containerd config dump` to parse. */
export function copyKubernetesNodeSnippet(to: string): string {
  cpSync(join(CLIENTS_DIR, 'kubernetes-node', 'containerd-config.toml'), to);
  return to;
}
