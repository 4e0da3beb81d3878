/**
 * Manifests by digest, byte-exact, with their media type: the bytes in the content store (keyed
 * by digest like any blob), the media type and references in the metadata store's manifest
 * index (manifest-record.ts). A manifest exists once its record does; the record is written
 * after the bytes are published. Manifests are small and read on every pull, so recently used
 * ones are also kept in memory (bounded by bytes).
 */
import { LRUCache } from 'lru-cache';
import type { Digest } from '../domain/digest.js';
import type { ManifestIndex, ManifestRecord } from '../metadata/metadata-store.js';
import type { ContentStore } from './content-store.js';
import { describeManifest } from './manifest-record.js';

export interface StoredManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
}

const DEFAULT_MEMORY_BYTES = 64 * 1024 * 1024;

export class ManifestStore {
  readonly #memory: LRUCache<string, StoredManifest>;

  constructor(private readonly content: ContentStore, private readonly index: ManifestIndex, memoryBytes = DEFAULT_MEMORY_BYTES) {
    this.#memory = new LRUCache({ maxSize: memoryBytes, sizeCalculation: (manifest) => manifest.bytes.byteLength + 256 });
  }

  async read(digest: Digest): Promise<StoredManifest | undefined> {
    const cached = this.#memory.get(digest.value);
    if (cached) return cached;
    const record = await this.index.get(digest.value);
    const bytes = record && (await this.content.read(digest));
    if (!record || !bytes) return undefined;
    const manifest = { digest: digest.value, mediaType: record.mediaType, bytes };
    this.#memory.set(digest.value, manifest);
    return manifest;
  }

  /**
   * Publishes the bytes (the content store checks them against `digest`), then records the
   * manifest: `record` when the caller parsed it already (a validated push), else read from the bytes.
   */
  async write(digest: Digest, bytes: Buffer, mediaType: string, record?: ManifestRecord): Promise<StoredManifest> {
    if (!(await this.content.stat(digest))) {
      const writer = await this.content.writer({ sizeHint: bytes.byteLength });
      try {
        await writer.write(bytes);
        await writer.commit(digest, bytes.byteLength);
      } finally {
        await writer.cancel();
      }
    }
    await this.index.put(record ?? describeManifest(digest.value, mediaType, bytes));
    const manifest = { digest: digest.value, mediaType, bytes };
    this.#memory.set(digest.value, manifest);
    return manifest;
  }

  /** Forgets the in-memory copy (the manifest was removed, e.g. by verify). */
  forget(digest: Digest): void {
    this.#memory.delete(digest.value);
  }
}
