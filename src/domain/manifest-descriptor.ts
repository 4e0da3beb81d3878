/**
 * Descriptors inside a pushed manifest (OCI image-spec v1.1 "Content Descriptors"), checked field
 * by field so a refusal names the field: `layers[2].digest: ...`. Only what a registry relies on
 * is checked (media type, digest, size, and the optional fields' types); unknown fields are
 * allowed, as the image-spec asks of implementations ("Extensibility").
 */
import { createHash } from 'node:crypto';
import { isDigest } from './digest.js';
import { ManifestInvalidError } from './errors.js';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  urls?: string[];
  annotations?: Record<string, string>;
}

/** A parsed JSON object: the only shape a manifest or descriptor may have. */
export type JsonObject = Record<string, unknown>;

/**
 * RFC 6838 section 4.2 `type/subtype` without parameters, as the image-spec JSON schema
 * (defs-descriptor.json `mediaType`) requires of every media type in a manifest.
 */
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function invalid(field: string, problem: string): ManifestInvalidError {
  return new ManifestInvalidError(`manifest invalid: ${field}: ${problem}`);
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isMediaType(value: string): boolean {
  return MEDIA_TYPE.test(value);
}

export function requireObject(value: unknown, field: string): JsonObject {
  if (!isJsonObject(value)) throw invalid(field, `expected an object, got ${describe(value)}`);
  return value;
}

export function requireArray(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw invalid(field, `expected an array, got ${describe(value)}`);
  return value;
}

export function requireMediaType(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalid(field, `expected a media type string, got ${describe(value)}`);
  if (!isMediaType(value)) throw invalid(field, `${quote(value)} is not a media type (RFC 6838 type/subtype)`);
  return value;
}

/** `artifactType` is optional; an empty one counts as absent (distribution-spec "Listing Referrers"). */
export function optionalArtifactType(value: unknown, field: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  return requireMediaType(value, field);
}

export function optionalAnnotations(value: unknown, field: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  const object = requireObject(value, field);
  for (const [key, entry] of Object.entries(object)) {
    if (typeof entry !== 'string') throw invalid(`${field}[${quote(key)}]`, `annotation values must be strings, got ${describe(entry)}`);
  }
  return Object.fromEntries(Object.entries(object)) as Record<string, string>;
}

/** One descriptor: mediaType, digest and size are required (image-spec "Properties"). */
export function parseDescriptor(value: unknown, field: string): Descriptor {
  const object = requireObject(value, field);
  const mediaType = requireMediaType(object.mediaType, `${field}.mediaType`);
  const digest = requireDigest(object.digest, `${field}.digest`);
  const size = requireSize(object.size, `${field}.size`);
  const descriptor: Descriptor = { mediaType, digest, size };
  const artifactType = optionalArtifactType(object.artifactType, `${field}.artifactType`);
  if (artifactType !== undefined) descriptor.artifactType = artifactType;
  const urls = optionalStrings(object.urls, `${field}.urls`);
  if (urls !== undefined) descriptor.urls = urls;
  const annotations = optionalAnnotations(object.annotations, `${field}.annotations`);
  if (annotations !== undefined) descriptor.annotations = annotations;
  checkEmbeddedData(object.data, descriptor, `${field}.data`);
  return descriptor;
}

/** `platform` of an index entry: if present, `architecture` and `os` are required strings. */
export function checkPlatform(value: unknown, field: string): void {
  if (value === undefined) return;
  const platform = requireObject(value, field);
  for (const key of ['architecture', 'os']) {
    if (typeof platform[key] !== 'string') throw invalid(`${field}.${key}`, `expected a string, got ${describe(platform[key])}`);
  }
}

function requireDigest(value: unknown, field: string): string {
  if (typeof value !== 'string') throw invalid(field, `expected a digest string, got ${describe(value)}`);
  if (!isDigest(value)) throw invalid(field, `${quote(value)} is not a digest (sha256:<64 hex> or sha512:<128 hex>)`);
  return value;
}

function requireSize(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(field, `expected a non-negative integer, got ${describe(value)}`);
  }
  return value;
}

function optionalStrings(value: unknown, field: string): string[] | undefined {
  if (value === undefined) return undefined;
  const array = requireArray(value, field);
  array.forEach((entry, index) => {
    if (typeof entry !== 'string') throw invalid(`${field}[${index}]`, `expected a string, got ${describe(entry)}`);
  });
  return array as string[];
}

/**
 * `data` embeds the content itself; the image-spec says the decoded bytes MUST be the referenced
 * content, so a registry that stores the descriptor checks them against size and digest.
 */
function checkEmbeddedData(value: unknown, descriptor: Descriptor, field: string): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || !BASE64.test(value)) throw invalid(field, 'expected base64 (RFC 4648 section 4)');
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length !== descriptor.size) throw invalid(field, `decodes to ${bytes.length} bytes, but size is ${descriptor.size}`);
  const [algorithm] = descriptor.digest.split(':');
  const actual = `${algorithm}:${createHash(algorithm!).update(bytes).digest('hex')}`;
  if (actual !== descriptor.digest) throw invalid(field, `decodes to content with digest ${actual}, not ${descriptor.digest}`);
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'object') return 'an object';
  return String(value);
}

export function quote(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}...` : text);
}
