/** Shared by the two halves of the MetadataStore contract (metadata-store.contract.ts). */
import type { ManifestRecord, MetadataStore, TagRecord } from '../../src/metadata/metadata-store.js';

/** What each test gets: one open store, and a way to open more on the same backend. */
export interface ContractContext {
  store: MetadataStore;
  openAnother(): Promise<MetadataStore>;
}

export function digestOf(n: number): string {
  return `sha256:${n.toString(16).padStart(64, '0')}`;
}

export function tagRecord(n: number, checkedAt = 1_700_000_000_000 + n): TagRecord {
  return { digest: digestOf(n), mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 500 + n, checkedAt };
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

export function manifestRecord(n: number, extra: Partial<ManifestRecord> = {}): ManifestRecord {
  return {
    digest: digestOf(n),
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 1_000 + n,
    references: [digestOf(n + 10_000), digestOf(n + 20_000)],
    ...extra,
  };
}

