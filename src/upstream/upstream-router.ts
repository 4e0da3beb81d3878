/**
 * Decides what repository a request names: one hosted by this mirror (pushed to it), or one
 * proxied from a configured upstream, and the name to ask that upstream for. A name is one or
 * the other, never both (DESIGN.md "Hosted next to proxied"). Clients name the registry in
 * three ways (measured with real clients):
 *   - dockerd (`registry-mirrors`): nothing; the default upstream is meant;
 *   - containerd (hosts.toml): `?ns=<registry>` on every request;
 *   - podman/CRI-O (registries.conf `location = "mirror/<registry>"`): a path prefix,
 *     `/v2/<registry>/<name>/...`, recognised by the docker reference rule for domains.
 * In that order: `?ns=` and a configured registry prefix always mean that upstream; then a name
 * matching `hosted.repositories` is hosted, and so is every other name when there is no default
 * upstream (`"defaultUpstream": null`, the registry:2 behaviour, where `quay.io/x` is just a
 * name); then a prefix naming a registry that is not configured is refused with NAME_UNKNOWN
 * (so containerd falls back to the registry itself); the rest goes to the default upstream. A registry name is only ever compared
 * with config keys, never dialled.
 */
import { NameInvalidError, NameUnknownError } from '../domain/errors.js';
import { assertRepositoryName } from '../domain/reference.js';
import { isRegistryHost, looksLikeRegistryHost, normalizeRegistryHost } from '../domain/registry-host.js';
import { hostedTarget, proxiedTarget, type ProxiedTarget, type RepositoryTarget } from '../domain/target.js';

/** Other names clients use for Docker Hub. */
const DOCKER_HUB_ALIASES = ['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'];

/** `hosted.repositories` as the router needs it (hosted/repository-patterns.ts). */
export interface HostedNames {
  matches(name: string): boolean;
  /** The patterns, for messages: `"team/**", "my-image"`. */
  describe(): string;
}

const NO_HOSTED_NAMES: HostedNames = { matches: () => false, describe: () => '(none)' };

export class UpstreamRouter {
  private readonly byHost = new Map<string, string>();
  private readonly upstreamNames: ReadonlySet<string>;

  constructor(upstreamNames: string[], private readonly defaultUpstream: string | null, readonly hosted: HostedNames = NO_HOSTED_NAMES) {
    this.upstreamNames = new Set(upstreamNames);
    for (const name of upstreamNames) this.byHost.set(normalizeRegistryHost(name), name);
    if (this.byHost.has('docker.io')) {
      for (const alias of DOCKER_HUB_ALIASES) if (!this.byHost.has(alias)) this.byHost.set(alias, this.byHost.get('docker.io')!);
    }
  }

  /** The repository a request names: hosted or proxied (see the file comment). */
  target(name: string, ns: string | undefined): RepositoryTarget {
    if (ns !== undefined) return this.proxied(this.upstreamForHost(ns, 'ns'), name);
    const slash = name.indexOf('/');
    const first = slash > 0 ? name.slice(0, slash) : '';
    const prefixed = first !== '' && looksLikeRegistryHost(first);
    if (prefixed && this.byHost.has(normalizeRegistryHost(first))) return this.proxied(this.upstreamForHost(first, 'path prefix'), name.slice(slash + 1));
    if (this.defaultUpstream === null || this.hosted.matches(name)) return hostedTarget(assertRepositoryName(name));
    if (prefixed) return this.proxied(this.upstreamForHost(first, 'path prefix'), name.slice(slash + 1));
    return this.proxied(this.defaultUpstream, name);
  }

  /** A proxied repository (warm, import, export): a hosted name is refused with NAME_UNKNOWN. */
  route(name: string, ns: string | undefined): ProxiedTarget {
    const target = this.target(name, ns);
    if (target.kind === 'hosted') throw new NameUnknownError(`${name} is a repository hosted by this mirror, not one it proxies`);
    return target;
  }

  /** The repository a metadata key (domain/target.ts `repositoryKey`) stands for. */
  targetOfKey(key: string): RepositoryTarget {
    const slash = key.indexOf('/');
    const first = slash > 0 ? key.slice(0, slash) : '';
    return this.upstreamNames.has(first) ? proxiedTarget(first, key.slice(slash + 1)) : hostedTarget(key);
  }

  private upstreamForHost(host: string, where: string): string {
    if (!isRegistryHost(host)) throw new NameInvalidError(`${where} ${JSON.stringify(host.slice(0, 100))} is not a registry host name`);
    const upstream = this.byHost.get(normalizeRegistryHost(host));
    if (!upstream) throw new NameUnknownError(`registry ${host} is not mirrored here`);
    return upstream;
  }

  private proxied(upstream: string, name: string): ProxiedTarget {
    assertRepositoryName(name);
    // Docker Hub's official images live under library/ (docker reference normalisation).
    const repository = upstream === 'docker.io' && !name.includes('/') ? `library/${name}` : name;
    return proxiedTarget(upstream, assertRepositoryName(repository));
  }
}
