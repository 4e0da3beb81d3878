/**
 * The `manifests` of an OCI layout's index.json (OCI image-spec "Image Index"), read from a file
 * one descriptor at a time. An archive of 200,000 tags has an index.json of about 50 MB: parsed
 * whole it takes several times that in memory, and a cap on it caps the archive (the earlier
 * 64 MiB cap stopped at about 270,000 entries). Here memory is bounded by one entry.
 *
 * The scanner follows the JSON grammar (RFC 8259) only as far as it must to cut the text into
 * values: the top-level object's keys, each of its values, and each element of `manifests`.
 * Every cut value is then checked by JSON.parse, so text the scanner lets through is still
 * rejected when it is not JSON. Values larger than MAX_VALUE_CHARS are refused rather than held.
 */
import { createReadStream } from 'node:fs';
import { ManifestInvalidError } from '../domain/errors.js';
import { MAX_MANIFEST_BYTES } from '../domain/media-types.js';
import type { Descriptor } from './image-walk.js';

/** One descriptor, or any other top-level value, as text: far above a real one's size. */
const MAX_VALUE_CHARS = MAX_MANIFEST_BYTES;

type Place = 'start' | 'key' | 'colon' | 'value' | 'after-value' | 'element' | 'after-element' | 'end';

/**
 * Yields each entry of `manifests`, checked to be a descriptor with a digest, in file order.
 * `chunkBytes` is how much is read at a time (tests make it tiny, so values span chunks).
 */
export async function* indexEntries(file: string, chunkBytes = 256 * 1024): AsyncGenerator<Descriptor> {
  const scanner = new IndexScanner();
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: chunkBytes })) {
    yield* scanner.feed(chunk as string);
  }
  scanner.finish();
}

/** Counts the entries and checks the whole file, without keeping any of them. */
export async function countIndexEntries(file: string): Promise<number> {
  let count = 0;
  for await (const entry of indexEntries(file)) if (entry) count += 1;
  return count;
}

class IndexScanner {
  #place: Place = 'start';
  #key: string | undefined;
  #sawManifests = false;
  /** Members of the top-level object and entries of `manifests` so far. */
  #members = 0;
  #position = 0;
  /** A value is being cut: its text so far, nesting depth and string state. */
  #cutting = false;
  #value = '';
  #depth = 0;
  #inString = false;
  #escaped = false;

  *feed(text: string): Generator<Descriptor> {
    let at = 0;
    while (at < text.length) {
      if (this.#cutting) {
        const { end, complete } = this.#scanValue(text, at);
        this.#value += text.slice(at, end);
        if (this.#value.length > MAX_VALUE_CHARS) throw invalid(`has a value larger than ${MAX_VALUE_CHARS} characters`);
        at = end;
        if (!complete) continue;
        const entry = this.#valueDone();
        if (entry) yield entry;
        continue;
      }
      const code = text.charCodeAt(at);
      if (code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d) at += 1;
      else if (this.#punctuation(text[at]!)) at += 1;
    }
  }

  finish(): void {
    // A number or literal ends at a delimiter; at the very end of the text there is none.
    if (this.#cutting && this.#depth === 0 && !this.#inString) this.#valueDone();
    if (this.#place !== 'end') throw invalid('is not JSON: it ends early');
    if (!this.#sawManifests) throw invalid('has no manifests list');
  }

  /** Handles a significant character between values; false when it starts a value (not consumed). */
  #punctuation(char: string): boolean {
    const expect = (wanted: string, next: Place) => {
      if (char !== wanted) throw invalid(`is not JSON: expected ${JSON.stringify(wanted)}, got ${JSON.stringify(char)}`);
      this.#place = next;
      return true;
    };
    switch (this.#place) {
      case 'start':
        if (char !== '{') throw invalid('is not a JSON object');
        return expect('{', 'key');
      case 'colon': return expect(':', 'value');
      case 'key':
        if (char === '}' && this.#members === 0) return expect('}', 'end');
        if (char !== '"') throw invalid(`is not JSON: expected a key, got ${JSON.stringify(char)}`);
        return this.#startValue(char);
      case 'value':
        if (this.#key !== 'manifests') return this.#startValue(char);
        if (this.#sawManifests) throw invalid('has two manifests lists');
        this.#sawManifests = true;
        if (char !== '[') throw invalid('has no manifests list');
        return expect('[', 'element');
      case 'element':
        if (char === ']' && this.#position === 0) return this.#endManifests();
        return this.#startValue(char);
      case 'after-element':
        if (char === ']') return this.#endManifests();
        return expect(',', 'element');
      case 'after-value':
        this.#members += 1;
        this.#key = undefined;
        if (char === '}') return expect('}', 'end');
        return expect(',', 'key');
      case 'end':
        throw invalid(`is not JSON: ${JSON.stringify(char)} after the end`);
    }
  }

  #startValue(char: string): false {
    if (char === ',' || char === ':' || char === ']' || char === '}') throw invalid(`is not JSON: unexpected ${JSON.stringify(char)}`);
    this.#cutting = true;
    this.#value = '';
    this.#depth = 0;
    this.#inString = false;
    this.#escaped = false;
    return false;
  }

  #endManifests(): true {
    this.#key = undefined;
    this.#place = 'after-value';
    return true;
  }

  /** Scans from `at` until the value being cut ends (complete) or the text does. */
  #scanValue(text: string, at: number): { end: number; complete: boolean } {
    for (let index = at; index < text.length; index += 1) {
      const char = text.charCodeAt(index);
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (char === 0x5c /* \ */) this.#escaped = true;
        else if (char === 0x22 /* " */) {
          this.#inString = false;
          if (this.#depth === 0) return { end: index + 1, complete: true };
        }
      } else if (char === 0x22) this.#inString = true;
      else if (char === 0x7b /* { */ || char === 0x5b /* [ */) this.#depth += 1;
      else if (char === 0x7d /* } */ || char === 0x5d /* ] */) {
        if (this.#depth === 0) return { end: index, complete: true };
        this.#depth -= 1;
        if (this.#depth === 0) return { end: index + 1, complete: true };
      } else if (this.#depth === 0 && (char === 0x2c || char === 0x3a || char === 0x20 || char === 0x09 || char === 0x0a || char === 0x0d)) {
        return { end: index, complete: true };
      }
    }
    return { end: text.length, complete: false };
  }

  /** A value was cut: parse it, and return it when it is an entry of `manifests`. */
  #valueDone(): Descriptor | undefined {
    const text = this.#value;
    this.#cutting = false;
    this.#value = '';
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw invalid(`is not JSON (near ${JSON.stringify(text.slice(0, 40))})`);
    }
    if (this.#place === 'key') {
      this.#key = value as string;
      this.#place = 'colon';
      return undefined;
    }
    if (this.#place === 'value') {
      this.#place = 'after-value';
      return undefined;
    }
    this.#place = 'after-element';
    return checkDescriptor(value, this.#position++);
  }
}

/**
 * A descriptor with a digest, whose media type and annotations, where present, are strings
 * (image-spec "Descriptor"): the import names images by the ref.name annotation and routes them
 * by the media type, so anything else there would reach it as a name or type that is not text.
 */
function checkDescriptor(entry: unknown, position: number): Descriptor {
  if (entry === null || typeof entry !== 'object' || typeof (entry as { digest?: unknown }).digest !== 'string') {
    throw invalid(`manifests[${position}] is not a descriptor with a digest`);
  }
  const { mediaType, annotations } = entry as { mediaType?: unknown; annotations?: unknown };
  if (mediaType !== undefined && typeof mediaType !== 'string') throw invalid(`manifests[${position}].mediaType: expected a string, got ${JSON.stringify(mediaType)}`);
  if (annotations !== undefined) {
    if (annotations === null || typeof annotations !== 'object' || Array.isArray(annotations)) throw invalid(`manifests[${position}].annotations: expected an object`);
    for (const [key, value] of Object.entries(annotations)) {
      if (typeof value !== 'string') throw invalid(`manifests[${position}].annotations[${JSON.stringify(key).slice(0, 200)}]: expected a string, got ${JSON.stringify(value)?.slice(0, 40)}`);
    }
  }
  return entry as Descriptor;
}

function invalid(problem: string): ManifestInvalidError {
  return new ManifestInvalidError(`index.json ${problem}`);
}
