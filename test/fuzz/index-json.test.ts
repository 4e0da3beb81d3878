/**
 * index.json read as a stream (airgap/index-json-entries.ts, a hand-written scanner that cuts the
 * text into values for JSON.parse): for any text, it yields exactly the `manifests` entries
 * JSON.parse finds, in order, or fails with a ManifestInvalidError, and never accepts text that
 * JSON.parse refuses. Texts: JSON values and index-shaped objects with any members, written
 * compactly or spread over whitespace, then mutated (characters dropped, inserted, cut), read in
 * chunks of 1 to 65,536 bytes (a chunk may end inside a string, an escape or a UTF-8 sequence).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { indexEntries } from '../../src/airgap/index-json-entries.js';
import { ManifestInvalidError } from '../../src/domain/errors.js';
import { FUZZ_IO } from './fuzz-support.js';

const dir = mkdtempSync(path.join(tmpdir(), 'mirror-fuzz-index-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const anyText = fc.string({ unit: 'grapheme' });
const descriptor = fc.record({ digest: anyText, size: fc.integer(), annotations: fc.dictionary(anyText, anyText) }, { requiredKeys: ['digest'] });
const index = fc.record({
  schemaVersion: fc.constant(2),
  manifests: fc.array(fc.oneof(descriptor, fc.jsonValue({ maxDepth: 2 })), { maxLength: 6 }),
  extra: fc.jsonValue({ maxDepth: 3 }),
}, { requiredKeys: [] });
const text = fc.tuple(fc.oneof(index, fc.jsonValue({ maxDepth: 3 })), fc.constantFrom(0, 2)).map(([value, indent]) => JSON.stringify(value, null, indent) ?? 'null');

type Edit = { kind: 'none' } | { kind: 'drop'; at: number } | { kind: 'insert'; at: number; text: string } | { kind: 'cut'; at: number };
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom(',', '}', ']', '"', '\\', ' ', '{', '[', ':', '1', 'x') }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
);

function apply(source: string, change: Edit): string {
  if (change.kind === 'none') return source;
  const at = change.at % (source.length + 1);
  if (change.kind === 'drop') return source.slice(0, at) + source.slice(at + 1);
  if (change.kind === 'insert') return source.slice(0, at) + change.text + source.slice(at);
  return source.slice(0, at);
}

/** What JSON.parse makes of the text: the entries, or why it is not an index. */
function expected(source: string): unknown[] | 'invalid' {
  let parsed: unknown;
  try {
    parsed = JSON.parse(source);
  } catch {
    return 'invalid';
  }
  const manifests = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { manifests?: unknown }).manifests : undefined;
  if (!Array.isArray(manifests)) return 'invalid';
  if (!manifests.every((entry) => entry !== null && typeof entry === 'object' && typeof (entry as { digest?: unknown }).digest === 'string')) return 'invalid';
  return manifests;
}

async function read(source: string, chunkBytes: number): Promise<unknown[] | 'invalid'> {
  const file = path.join(dir, 'index.json');
  writeFileSync(file, source);
  const entries: unknown[] = [];
  try {
    for await (const entry of indexEntries(file, chunkBytes)) entries.push(entry);
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(ManifestInvalidError);
    return 'invalid';
  }
  return entries;
}

describe('index.json entries read as a stream', () => {
  it('are exactly what JSON.parse finds in manifests, or the text is refused with ManifestInvalidError', async () => {
    await fc.assert(fc.asyncProperty(text, edit, fc.constantFrom(1, 2, 3, 7, 64, 65536), async (source, change, chunkBytes) => {
      // As the file holds it: a dropped half of a surrogate pair is written as U+FFFD.
      const mutated = Buffer.from(apply(source, change)).toString('utf8');
      const want = expected(mutated);
      const got = await read(mutated, chunkBytes);
      // Duplicate "manifests" keys: JSON.parse keeps the last, the scanner refuses; both are fine as long as nothing wrong is yielded.
      if (got === 'invalid' && want !== 'invalid' && /"manifests"[\s\S]*"manifests"/.test(mutated)) return;
      expect(got).toEqual(want);
    }), { ...FUZZ_IO, numRuns: FUZZ_IO.numRuns * 10 });
  });
});
