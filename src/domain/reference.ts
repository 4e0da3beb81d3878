/**
 * Repository names and tags, per the OCI distribution-spec ("Pulling manifests": the `<name>`
 * and `<reference>` grammars). Validated before anything touches the disk or the upstream.
 */
import { isDigest, parseDigest, type Digest } from './digest.js';
import { NameInvalidError, TagInvalidError } from './errors.js';

const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_PATTERN = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** distribution limits a full name to 255 characters. */
const MAX_NAME_LENGTH = 255;

export function assertRepositoryName(name: string): string {
  if (name.length > MAX_NAME_LENGTH || !NAME_PATTERN.test(name)) {
    throw new NameInvalidError(`invalid repository name ${JSON.stringify(name.slice(0, 300))}`);
  }
  return name;
}

export function isTag(text: string): boolean {
  return TAG_PATTERN.test(text);
}

export function assertTag(tag: string): string {
  if (!TAG_PATTERN.test(tag)) throw new TagInvalidError(`invalid tag ${JSON.stringify(tag.slice(0, 200))}`);
  return tag;
}

/** A manifest reference is either a tag or a digest. */
export type ManifestReference = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

export function parseManifestReference(reference: string): ManifestReference {
  if (reference.includes(':')) return { kind: 'digest', digest: parseDigest(reference) };
  return { kind: 'tag', tag: assertTag(reference) };
}

export function referenceText(reference: ManifestReference): string {
  return reference.kind === 'tag' ? reference.tag : reference.digest.value;
}

export { isDigest };
