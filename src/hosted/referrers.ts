/**
 * The referrers of a manifest in a hosted repository (distribution-spec v1.1 "Listing
 * Referrers"): an image index of descriptors of the manifests linked to the repository whose
 * `subject` is the digest, with each one's `artifactType` (for an image manifest without one,
 * its config's media type; for an index without one, none) and all its annotations. Never a 404:
 * a subject nobody refers to has an empty list. Entries come in digest order, `n` at a time
 * after `last` when asked, with the next page's `last` for the Link header.
 */
import { OCI_INDEX } from '../domain/media-types.js';
import type { ManifestIndex, ManifestRecord, PageRequest } from '../metadata/metadata-store.js';
import type { ReferrersAnswer } from '../pull-through/registry-service.js';

/** Entries per page when the client names no `n`; a larger `n` is lowered to it. */
export const MAX_REFERRERS_PAGE = 1000;

export async function listReferrers(index: ManifestIndex, repository: string, subject: string, artifactType: string | undefined, page: PageRequest): Promise<ReferrersAnswer> {
  const records = (await index.referrers(repository, subject))
    .filter((record) => artifactType === undefined || record.artifactType === artifactType)
    .sort((a, b) => (a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0));
  const after = page.last === undefined ? records : records.filter((record) => record.digest > page.last!);
  const size = Math.min(page.n ?? MAX_REFERRERS_PAGE, MAX_REFERRERS_PAGE);
  const shown = after.slice(0, size);
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: shown.map(descriptorOf) }));
  const answer: ReferrersAnswer = { body, filtered: artifactType !== undefined };
  if (after.length > shown.length && shown.length > 0) answer.nextLast = shown.at(-1)!.digest;
  return answer;
}

function descriptorOf(record: ManifestRecord): Record<string, unknown> {
  const descriptor: Record<string, unknown> = { mediaType: record.mediaType, digest: record.digest, size: record.size };
  if (record.artifactType !== undefined) descriptor.artifactType = record.artifactType;
  if (record.annotations !== undefined) descriptor.annotations = record.annotations;
  return descriptor;
}
