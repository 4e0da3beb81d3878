/**
 * What the fake upstream holds: blobs by digest, and per repository its manifests (by digest)
 * and tags. Like distribution's storage, a blob can be linked to chosen repositories only, so
 * tests can check that the mirror does not serve a blob under a name that never had it.
 */
import { createHash } from 'node:crypto';

export interface StoredManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

interface StoredBlob {
  bytes: Buffer;
  /** null: reachable under every repository name. */
  repos: Set<string> | null;
}

interface Repository {
  manifests: Map<string, StoredManifest>;
  tags: Map<string, string>;
}

export interface TagPage {
  tags: string[];
  /** The `last` value for the next page, when more tags remain. */
  nextLast?: string;
}

export interface ReferrerDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

const OCI_EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export class FakeRegistryStore {
  readonly #blobs = new Map<string, StoredBlob>();
  readonly #repos = new Map<string, Repository>();

  addBlob(bytes: Buffer, repo?: string): string {
    const digest = sha256Digest(bytes);
    const existing = this.#blobs.get(digest);
    if (repo === undefined) {
      this.#blobs.set(digest, { bytes, repos: null });
    } else if (existing?.repos === null) {
      // Already global; linking it to one more repository changes nothing.
    } else {
      const repos = existing?.repos ?? new Set<string>();
      this.#blobs.set(digest, { bytes, repos: repos.add(repo) });
    }
    return digest;
  }

  deleteBlob(digest: string): void {
    this.#blobs.delete(digest);
  }

  blob(repo: string, digest: string): Buffer | undefined {
    const blob = this.#blobs.get(digest);
    if (!blob || (blob.repos !== null && !blob.repos.has(repo))) return undefined;
    return blob.bytes;
  }

  /** Any blob with this digest, regardless of repository; the CDN knows no repositories. */
  blobByDigest(digest: string): Buffer | undefined {
    return this.#blobs.get(digest)?.bytes;
  }

  putManifest(repo: string, bytes: Buffer, mediaType: string, tag?: string): string {
    const digest = sha256Digest(bytes);
    this.#repo(repo).manifests.set(digest, { bytes, mediaType, digest });
    if (tag !== undefined) this.setTag(repo, tag, digest);
    return digest;
  }

  setTag(repo: string, tag: string, digest: string): void {
    const repository = this.#repo(repo);
    if (!repository.manifests.has(digest)) {
      throw new Error(`setTag: repository ${repo} has no manifest ${digest}; putManifest it first`);
    }
    repository.tags.set(tag, digest);
  }

  deleteTag(repo: string, tag: string): void {
    this.#repos.get(repo)?.tags.delete(tag);
  }

  hasRepository(repo: string): boolean {
    return this.#repos.has(repo);
  }

  /** A manifest by tag or by digest, as the distribution-spec "Pulling manifests" allows. */
  manifest(repo: string, reference: string): StoredManifest | undefined {
    const repository = this.#repos.get(repo);
    if (!repository) return undefined;
    const digest = reference.includes(':') ? reference : repository.tags.get(reference);
    return digest === undefined ? undefined : repository.manifests.get(digest);
  }

  /**
   * distribution-spec "Listing Tags": lexical order, at most `n` after `last`; the caller turns
   * `nextLast` into a Link header.
   */
  tagPage(repo: string, n: number | undefined, last: string | undefined): TagPage {
    const all = [...(this.#repos.get(repo)?.tags.keys() ?? [])].sort();
    const after = last === undefined ? all : all.filter((tag) => tag > last);
    if (n === undefined || after.length <= n) return { tags: after };
    const tags = after.slice(0, n);
    return tags.length === 0 ? { tags } : { tags, nextLast: tags[tags.length - 1]! };
  }

  /** distribution-spec "Listing Referrers": manifests in `repo` whose `subject` is `digest`. */
  referrers(repo: string, digest: string, artifactType: string | undefined): ReferrerDescriptor[] {
    const found: ReferrerDescriptor[] = [];
    for (const manifest of this.#repos.get(repo)?.manifests.values() ?? []) {
      const descriptor = referrerDescriptor(manifest, digest);
      if (descriptor && (artifactType === undefined || descriptor.artifactType === artifactType)) found.push(descriptor);
    }
    return found;
  }

  #repo(name: string): Repository {
    let repository = this.#repos.get(name);
    if (!repository) {
      repository = { manifests: new Map(), tags: new Map() };
      this.#repos.set(name, repository);
    }
    return repository;
  }
}

interface ManifestFields {
  subject?: { digest?: unknown };
  artifactType?: unknown;
  config?: { mediaType?: unknown };
  annotations?: Record<string, string>;
}

function referrerDescriptor(manifest: StoredManifest, subjectDigest: string): ReferrerDescriptor | undefined {
  let parsed: ManifestFields;
  try {
    parsed = JSON.parse(manifest.bytes.toString('utf8')) as ManifestFields;
  } catch {
    return undefined;
  }
  if (parsed.subject?.digest !== subjectDigest) return undefined;
  // image-spec: artifactType, else the config media type unless it is the empty config.
  const configType = typeof parsed.config?.mediaType === 'string' && parsed.config.mediaType !== OCI_EMPTY_CONFIG ? parsed.config.mediaType : undefined;
  const artifactType = typeof parsed.artifactType === 'string' ? parsed.artifactType : configType;
  return {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.bytes.length,
    ...(artifactType === undefined ? {} : { artifactType }),
    ...(parsed.annotations === undefined ? {} : { annotations: parsed.annotations }),
  };
}
