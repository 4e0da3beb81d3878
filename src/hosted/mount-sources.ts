/**
 * Whether a blob may be mounted from another repository (distribution-spec "Mounting a blob from
 * another repository", `POST ?mount=<digest>&from=<name>`): `from` must name a repository the
 * caller may pull, which holds the blob here and now. Hosted repositories hold what was pushed
 * or mounted into them; a proxied repository holds a cached blob the upstream confirmed for it
 * (a verified fill through it), so cached upstream layers are mountable into hosted
 * repositories, one copy on disk either way. Anything less and the client uploads instead
 * (a 202 and a session, as the spec asks), so a mount never reveals more than a pull would.
 */
import type { Digest } from '../domain/digest.js';
import { repositoryKey, type ProxiedTarget, type RepositoryTarget } from '../domain/target.js';
import type { RegistryService } from '../pull-through/registry-service.js';
import type { HostedContent } from './hosted-content.js';

export interface MountSourcesOptions {
  /** Routes `from` as a request path would (upstream/upstream-router.ts). */
  route(name: string): RepositoryTarget;
  /** The access rules' pull permission (hosted/access-rules.ts). */
  mayPull(user: string | undefined, target: RepositoryTarget): boolean;
  hosted: HostedContent;
  /** The pull-through service behind the access policy, for clients that did not authenticate (pull-through/guarded-registry.ts). */
  guarded?: RegistryService<ProxiedTarget>;
}

export class MountSources {
  constructor(private readonly options: MountSourcesOptions) {}

  /** The blob's size when `user` may mount it from `from`; undefined otherwise. */
  async mountable(from: string, digest: Digest, user: string | undefined): Promise<{ size: number; from: RepositoryTarget } | undefined> {
    let source: RepositoryTarget;
    try {
      source = this.options.route(from);
    } catch {
      return undefined;
    }
    if (!this.options.mayPull(user, source)) return undefined;
    const size = await this.options.hosted.blobSize(repositoryKey(source), digest);
    if (size === undefined) return undefined;
    if (!(await this.#policyAllows(source, digest, user))) return undefined;
    return { size, from: source };
  }

  /** Private upstream content stays private: an anonymous caller must pass the pull-through access policy too. */
  async #policyAllows(source: RepositoryTarget, digest: Digest, user: string | undefined): Promise<boolean> {
    const { guarded } = this.options;
    if (source.kind !== 'proxy' || user !== undefined || !guarded) return true;
    return guarded.blobSize(source, digest).then(() => true, () => false);
  }
}
