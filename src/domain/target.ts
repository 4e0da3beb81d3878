/**
 * What a repository name in a request refers to: a repository proxied from a configured
 * upstream, or one hosted by this mirror (pushed to it). A name is one or the other, never both
 * (Harbor's model: a proxied name never accepts a push, a hosted name is never proxied).
 *
 * `repositoryKey` is the one name under which metadata (tags, links, verdicts, usage) and the
 * catalog know a repository: `<upstream>/<repository>` for proxied names (`docker.io/library/alpine`),
 * the plain name for hosted ones (`team/app`).
 */
export interface ProxiedTarget {
  readonly kind: 'proxy';
  /** Config key of the upstream, e.g. "docker.io". */
  readonly upstream: string;
  /** Repository name as the upstream knows it, e.g. "library/alpine". */
  readonly repository: string;
}

export interface HostedTarget {
  readonly kind: 'hosted';
  /** Repository name as clients push it, e.g. "team/app". */
  readonly repository: string;
}

export type RepositoryTarget = ProxiedTarget | HostedTarget;

export function proxiedTarget(upstream: string, repository: string): ProxiedTarget {
  return { kind: 'proxy', upstream, repository };
}

export function hostedTarget(repository: string): HostedTarget {
  return { kind: 'hosted', repository };
}

/** The metadata and catalog name of a repository (see the file comment). */
export function repositoryKey(target: RepositoryTarget): string {
  return target.kind === 'proxy' ? `${target.upstream}/${target.repository}` : target.repository;
}
