/**
 * A cache fill written to both tiers at once: the bucket (what every replica shares) and the
 * local disk (what this replica serves from, and what its clients follow while the fill runs:
 * `growing` is the local file's).
 *
 * The commit publishes in the bucket first, then locally. So a local copy never exists before the
 * bucket holds the blob: the last byte a follower (a client here, or another replica streaming
 * this fill, replicas/fleet-downloads.ts) can read is released by the local commit, which comes
 * after the bucket's, and a replica that found the blob on its disk may tell the fleet (the shared
 * blob index) that the bucket has it. Each tier checks the digest itself.
 */
import type { Digest } from '../domain/digest.js';
import type { Reservation } from '../eviction/reservation.js';
import type { ContentWriter, GrowingFile, StoredContent } from '../storage/content-store.js';

export class TieredWriter implements ContentWriter {
  #settled = false;

  constructor(
    private readonly local: ContentWriter,
    private readonly remote: ContentWriter,
    private readonly reservation: Reservation,
    private readonly onPublished: (stored: StoredContent) => Promise<void>,
  ) {}

  get id(): string {
    return this.local.id;
  }

  get written(): number {
    return this.local.written;
  }

  /** Both tiers take the chunk; the slower one (usually the bucket's part uploads) sets the pace. */
  async write(chunk: Uint8Array): Promise<void> {
    await this.reservation.grow(chunk.byteLength);
    await Promise.all([this.local.write(chunk), this.remote.write(chunk)]);
  }

  async commit(expected: Digest, size?: number): Promise<{ digest: Digest; size: number }> {
    let stored: StoredContent;
    try {
      await this.remote.commit(expected, size);
      stored = await this.local.commit(expected, size);
    } catch (error) {
      await this.cancel(error as Error);
      throw error;
    }
    this.#settle();
    await this.onPublished(stored);
    return stored;
  }

  async cancel(reason?: Error): Promise<void> {
    this.#settle();
    await Promise.all([this.local.cancel(reason), this.remote.cancel(reason)]);
  }

  growing(): GrowingFile {
    return this.local.growing!();
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.reservation.release();
  }
}
