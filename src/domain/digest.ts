/**
 * Content digests, `algorithm:encoded` (OCI image-spec "Digests"). sha256 and sha512 are the
 * registered algorithms; their encodings are lower-case hex of fixed length. Anything else is
 * rejected before it reaches the disk or the upstream, which also keeps paths built from a
 * digest inside the cache directory.
 */
import { createHash, type Hash } from 'node:crypto';
import { DigestInvalidError } from './errors.js';

export type DigestAlgorithm = 'sha256' | 'sha512';

export interface Digest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
  /** The canonical `algorithm:hex` string. */
  readonly value: string;
}

const ENCODED_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };
const DIGEST_PATTERN = /^(sha256|sha512):([a-f0-9]+)$/;

export function parseDigest(text: string): Digest {
  const match = DIGEST_PATTERN.exec(text);
  const algorithm = match?.[1] as DigestAlgorithm | undefined;
  if (!match || !algorithm || match[2]!.length !== ENCODED_LENGTH[algorithm]) {
    throw new DigestInvalidError(`invalid digest ${JSON.stringify(text.slice(0, 200))}: expected sha256:<64 hex> or sha512:<128 hex>`);
  }
  return { algorithm, hex: match[2]!, value: text };
}

export function isDigest(text: string): boolean {
  const match = DIGEST_PATTERN.exec(text);
  return !!match && match[2]!.length === ENCODED_LENGTH[match[1] as DigestAlgorithm];
}

export function createDigester(algorithm: DigestAlgorithm): Hash {
  return createHash(algorithm);
}

export function digestOf(bytes: Uint8Array, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return parseDigest(`${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`);
}
