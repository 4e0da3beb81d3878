/**
 * Copies blobs from the bucket into the local tier in the background, once per digest at a time
 * in this process: the first GET of a blob this replica does not hold is streamed from S3 to its
 * client, and the copy made here lets the next one go out with sendfile and no S3 request. The
 * copy is a local writer like any fill: hashed, checked against the digest, then published, and
 * it claims room in the local budget as its bytes arrive. A blob larger than the whole local
 * budget is not copied.
 */
import type { Digest } from '../domain/digest.js';
import type { S3ContentStore } from '../storage/s3/s3-content-store.js';
import type { LocalTier } from './local-tier.js';

export class Promotions {
  readonly #running = new Map<string, Promise<void>>();

  constructor(
    private readonly local: LocalTier,
    private readonly remote: S3ContentStore,
    private readonly onError: (error: unknown, digest: Digest) => void = () => {},
  ) {}

  /** Starts copying `digest` (`size` bytes) unless a copy is running or it cannot fit. */
  start(digest: Digest, size: number): void {
    if (this.#running.has(digest.value) || size > this.local.budget.maxBytes) return;
    const copy = this.#copy(digest, size)
      .catch((error: unknown) => this.onError(error, digest))
      .finally(() => this.#running.delete(digest.value));
    this.#running.set(digest.value, copy);
  }

  /** Resolves once the copies under way have ended (close). */
  async drain(): Promise<void> {
    await Promise.all(this.#running.values());
  }

  async #copy(digest: Digest, size: number): Promise<void> {
    const writer = await this.local.content.writer({ sizeHint: size });
    const reservation = this.local.budget.reserve();
    let body: Awaited<ReturnType<S3ContentStore['open']>>;
    try {
      body = await this.remote.open(digest);
    } catch (error) {
      await writer.cancel(error as Error);
      throw error;
    }
    if (!body || body.kind !== 'stream') return void (await writer.cancel());
    try {
      for await (const chunk of body.stream) {
        await reservation.grow((chunk as Buffer).byteLength);
        await writer.write(chunk as Buffer);
      }
      const stored = await writer.commit(digest, size);
      await this.local.added(digest, stored.size);
    } catch (error) {
      body.stream.destroy();
      await writer.cancel(error as Error);
      throw error;
    } finally {
      reservation.release();
    }
  }
}
