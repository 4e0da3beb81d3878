/**
 * Decides which configured upstream a request is for, and the repository name to ask it for.
 * Clients name the registry in three ways (measured with real clients):
 *   - dockerd (`registry-mirrors`): nothing; the default upstream is meant;
 *   - containerd (hosts.toml): `?ns=<registry>` on every request;
 *   - podman/CRI-O (registries.conf `location = "mirror/<registry>"`): a path prefix,
 *     `/v2/<registry>/<name>/...`, recognised by the docker reference rule for domains.
 * A registry that is not configured is refused here with NAME_UNKNOWN, so containerd falls back
 * to the registry itself; the name is only ever compared with config keys, never dialled.
 */
import { NameInvalidError, NameUnknownError } from '../domain/errors.js';
import { assertRepositoryName } from '../domain/reference.js';
import { isRegistryHost, looksLikeRegistryHost, normalizeRegistryHost } from '../domain/registry-host.js';
import { proxiedTarget, type ProxiedTarget } from '../domain/target.js';

/** Other names clients use for Docker Hub. */
const DOCKER_HUB_ALIASES = ['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'];

export class UpstreamRouter {
  private readonly byHost = new Map<string, string>();

  constructor(upstreamNames: string[], private readonly defaultUpstream: string) {
    for (const name of upstreamNames) this.byHost.set(normalizeRegistryHost(name), name);
    if (this.byHost.has('docker.io')) {
      for (const alias of DOCKER_HUB_ALIASES) if (!this.byHost.has(alias)) this.byHost.set(alias, this.byHost.get('docker.io')!);
    }
  }

  route(name: string, ns: string | undefined): ProxiedTarget {
    if (ns !== undefined) return this.target(this.upstreamForHost(ns, 'ns'), name);
    const slash = name.indexOf('/');
    const first = slash > 0 ? name.slice(0, slash) : '';
    if (first && looksLikeRegistryHost(first)) return this.target(this.upstreamForHost(first, 'path prefix'), name.slice(slash + 1));
    return this.target(this.defaultUpstream, name);
  }

  private upstreamForHost(host: string, where: string): string {
    if (!isRegistryHost(host)) throw new NameInvalidError(`${where} ${JSON.stringify(host.slice(0, 100))} is not a registry host name`);
    const upstream = this.byHost.get(normalizeRegistryHost(host));
    if (!upstream) throw new NameUnknownError(`registry ${host} is not mirrored here`);
    return upstream;
  }

  private target(upstream: string, name: string): ProxiedTarget {
    assertRepositoryName(name);
    // Docker Hub's official images live under library/ (docker reference normalisation).
    const repository = upstream === 'docker.io' && !name.includes('/') ? `library/${name}` : name;
    return proxiedTarget(upstream, assertRepositoryName(repository));
  }
}
