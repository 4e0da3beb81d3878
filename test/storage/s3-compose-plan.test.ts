/**
 * How a resumable writer's chunks become multipart parts (src/storage/s3/compose-plan.ts): every
 * part but the last at least S3's 5 MiB minimum, big chunks copied, no byte lost or reordered.
 * Pure functions: runs without an S3 server.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { orderChunks, planParts, type StoredChunk } from '../../src/storage/s3/compose-plan.js';

const MIN = 5;

function chunksOf(sizes: number[]): StoredChunk[] {
  let offset = 0;
  return sizes.map((size, index) => {
    const chunk = { key: `c${index}`, offset, size, etag: `"${index}"` };
    offset += size;
    return chunk;
  });
}

function describePlan(sizes: number[]): string[] {
  return planParts(chunksOf(sizes), MIN).map((part) => (part.kind === 'copy' ? `copy ${part.chunk.key}` : `gather ${part.chunks.map((c) => c.key).join('+')}`));
}

describe('planParts', () => {
  it('copies chunks of the minimum or more, gathers smaller ones with what follows', () => {
    expect(describePlan([5, 7, 1])).toEqual(['copy c0', 'copy c1', 'gather c2']);
    expect(describePlan([1, 2, 2, 9, 1])).toEqual(['gather c0+c1+c2', 'copy c3', 'gather c4']);
    expect(describePlan([1, 9, 6])).toEqual(['gather c0+c1', 'copy c2']);
    expect(describePlan([])).toEqual([]);
  });

  it('for any chunk sizes: parts keep every byte in order, and only the last may be under the minimum', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 12 }), { maxLength: 40 }), (sizes) => {
      const parts = planParts(chunksOf(sizes), MIN);
      const keys = parts.flatMap((part) => (part.kind === 'copy' ? [part.chunk.key] : part.chunks.map((c) => c.key)));
      expect(keys).toEqual(sizes.map((_, index) => `c${index}`));
      const partSizes = parts.map((part) => (part.kind === 'copy' ? part.chunk.size : part.size));
      expect(partSizes.slice(0, -1).every((size) => size >= MIN)).toBe(true);
      expect(partSizes.every((size) => size < MIN + 12)).toBe(true);
    }));
  });
});

describe('orderChunks', () => {
  it('sorts by offset and sums the size', () => {
    const [a, b, c] = chunksOf([3, 4, 5]);
    expect(orderChunks([c!, a!, b!])).toEqual({ chunks: [a, b, c], size: 12 });
  });

  it('refuses a gap, and two chunks at one offset (two writers on one upload)', () => {
    const [a, , c] = chunksOf([3, 4, 5]);
    expect(() => orderChunks([a!, c!])).toThrow(/starts at 7, expected 3/);
    expect(() => orderChunks([a!, { ...a!, key: 'other' }])).toThrow(/starts at 0, expected 3/);
  });
});
