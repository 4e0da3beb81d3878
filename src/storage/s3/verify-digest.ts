/**
 * The check every commit makes before anything is published (content-store.ts: "nothing is
 * visible under a digest until a writer's commit has checked size and digest").
 *
 * Writers hash sha256 while bytes arrive (what registries use); a sha512 digest is checked by
 * hashing the held bytes again, which costs a read but only for that rare algorithm.
 */
import { createDigester, type Digest, type DigestAlgorithm } from '../../domain/digest.js';
import { DigestInvalidError, SizeInvalidError } from '../../domain/errors.js';

export const STREAMING_ALGORITHM: DigestAlgorithm = 'sha256';

export interface HeldBytes {
  size: number;
  /** Hex of the streaming algorithm's digest over the held bytes. */
  streamingHex: string;
  /** Feeds every held byte, in order, to `update` (for another algorithm). */
  replay(update: (bytes: Uint8Array) => void): Promise<void>;
}

/** Throws DigestInvalidError when `held` is not `expected`, SizeInvalidError when it is not `size` bytes. */
export async function verifyDigest(held: HeldBytes, expected: Digest, size?: number): Promise<void> {
  if (size !== undefined && size !== held.size) {
    throw new SizeInvalidError(`size mismatch for ${expected.value}: expected ${size} bytes, got ${held.size}`);
  }
  const actual = expected.algorithm === STREAMING_ALGORITHM ? held.streamingHex : await rehash(held, expected.algorithm);
  if (actual !== expected.hex) {
    throw new DigestInvalidError(`the bytes written for ${expected.value} hash to ${expected.algorithm}:${actual}`);
  }
}

async function rehash(held: HeldBytes, algorithm: DigestAlgorithm): Promise<string> {
  const digester = createDigester(algorithm);
  await held.replay((bytes) => digester.update(bytes));
  return digester.digest('hex');
}
