/**
 * Manifest validation for PUT (src/domain/manifest.ts): every accepted media type, what the
 * metadata gets from each (references, subject, artifactType, annotations), and refusals that
 * name the field. Property tests: no input, however broken, makes it throw anything but a
 * MirrorError.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManifestInvalidError, MirrorError } from '../../src/domain/errors.js';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_MANIFEST_BYTES, OCI_INDEX, OCI_MANIFEST } from '../../src/domain/media-types.js';
import { ManifestTooLargeError, OCI_ARTIFACT_MANIFEST, contentTypeMediaType, parseManifest } from '../../src/domain/manifest.js';

const sha256 = (text: string | Uint8Array) => `sha256:${createHash('sha256').update(text).digest('hex')}`;
const CONFIG = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('config'), size: 6 };
const LAYER_A = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256('layer a'), size: 7 };
const LAYER_B = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256('layer b'), size: 7 };
const SUBJECT = { mediaType: OCI_MANIFEST, digest: sha256('subject'), size: 7 };

const bytes = (value: unknown) => Buffer.from(JSON.stringify(value));
const ociManifest = (extra: Record<string, unknown> = {}) => ({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: CONFIG, layers: [LAYER_A, LAYER_B], ...extra });

/** The message of the ManifestInvalidError that `parse` throws (fails the test if it does not throw one). null: no Content-Type. */
function refusal(document: unknown, contentType: string | null = OCI_MANIFEST): string {
  try {
    parseManifest(typeof document === 'string' ? Buffer.from(document) : bytes(document), contentType ?? undefined);
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestInvalidError);
    expect((error as ManifestInvalidError).code).toBe('MANIFEST_INVALID');
    return (error as Error).message;
  }
  throw new Error('expected a ManifestInvalidError, but the manifest was accepted');
}

describe('accepted manifests and what the metadata gets from them', () => {
  it('OCI image manifest: config and layers are blobs; digest and size are those of the exact bytes', () => {
    const body = Buffer.from(`  ${JSON.stringify(ociManifest(), null, 3)}\n`);
    const parsed = parseManifest(body, OCI_MANIFEST);
    expect(parsed.mediaType).toBe(OCI_MANIFEST);
    expect(parsed.digest).toBe(sha256(body));
    expect(parsed.size).toBe(body.length);
    expect(parsed.references).toEqual([
      { digest: CONFIG.digest, size: 6, mediaType: CONFIG.mediaType, kind: 'blob', mustExist: true },
      { digest: LAYER_A.digest, size: 7, mediaType: LAYER_A.mediaType, kind: 'blob', mustExist: true },
      { digest: LAYER_B.digest, size: 7, mediaType: LAYER_B.mediaType, kind: 'blob', mustExist: true },
    ]);
    expect(parsed.subject).toBeUndefined();
    expect(parsed.annotations).toBeUndefined();
  });

  it('OCI image manifest without artifactType: the config media type stands in (distribution-spec "Listing Referrers")', () => {
    expect(parseManifest(bytes(ociManifest()), OCI_MANIFEST).artifactType).toBe(CONFIG.mediaType);
    expect(parseManifest(bytes(ociManifest({ artifactType: '' })), OCI_MANIFEST).artifactType).toBe(CONFIG.mediaType);
    expect(parseManifest(bytes(ociManifest({ artifactType: 'application/vnd.example.sbom.v1' })), OCI_MANIFEST).artifactType).toBe('application/vnd.example.sbom.v1');
  });

  it('OCI image manifest with subject and annotations (image-spec 1.1): subject returned, not a reference', () => {
    const annotations = { 'org.opencontainers.image.created': '2024-06-01T00:00:00Z', 'org.example.sbom.format': 'json' };
    const parsed = parseManifest(bytes(ociManifest({ subject: SUBJECT, annotations, artifactType: 'application/vnd.example.sbom.v1' })), OCI_MANIFEST);
    expect(parsed.subject).toEqual(SUBJECT);
    expect(parsed.annotations).toEqual(annotations);
    expect(parsed.references.map((reference) => reference.digest)).not.toContain(SUBJECT.digest);
  });

  it('OCI index: entries of manifest types are manifests, other entries blobs; artifactType only when present', () => {
    const child = { mediaType: OCI_MANIFEST, digest: sha256('child'), size: 500, platform: { architecture: 'amd64', os: 'linux' } };
    const odd = { mediaType: 'application/vnd.example.thing', digest: sha256('odd'), size: 3 };
    const parsed = parseManifest(bytes({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [child, odd], subject: SUBJECT, annotations: { a: 'b' } }), OCI_INDEX);
    expect(parsed.references.map((reference) => [reference.digest, reference.kind])).toEqual([[child.digest, 'manifest'], [odd.digest, 'blob']]);
    expect(parsed.artifactType).toBeUndefined();
    expect(parsed.subject).toEqual(SUBJECT);
    expect(parsed.annotations).toEqual({ a: 'b' });
    const typed = parseManifest(bytes({ schemaVersion: 2, mediaType: OCI_INDEX, artifactType: 'application/vnd.example.set', manifests: [] }), OCI_INDEX);
    expect(typed.artifactType).toBe('application/vnd.example.set');
    expect(typed.references).toEqual([]);
  });

  it('Docker schema 2 manifest and manifest list', () => {
    const config = { mediaType: 'application/vnd.docker.container.image.v1+json', digest: CONFIG.digest, size: 6 };
    const layer = { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: LAYER_A.digest, size: 7 };
    const manifest = parseManifest(bytes({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config, layers: [layer] }), DOCKER_MANIFEST);
    expect(manifest.references.map((reference) => reference.digest)).toEqual([CONFIG.digest, LAYER_A.digest]);
    const child = { mediaType: DOCKER_MANIFEST, digest: sha256('amd64'), size: 428, platform: { architecture: 'amd64', os: 'linux' } };
    const list = parseManifest(bytes({ schemaVersion: 2, mediaType: DOCKER_MANIFEST_LIST, manifests: [child] }), DOCKER_MANIFEST_LIST);
    expect(list.references).toEqual([{ digest: child.digest, size: 428, mediaType: DOCKER_MANIFEST, kind: 'manifest', mustExist: true }]);
  });

  it('OCI artifact manifest (1.1 release candidates): blobs, subject, required artifactType', () => {
    const document = { mediaType: OCI_ARTIFACT_MANIFEST, artifactType: 'application/vnd.example.signature', blobs: [LAYER_A], subject: SUBJECT };
    const parsed = parseManifest(bytes(document), OCI_ARTIFACT_MANIFEST);
    expect(parsed.artifactType).toBe('application/vnd.example.signature');
    expect(parsed.references.map((reference) => reference.digest)).toEqual([LAYER_A.digest]);
    expect(parsed.subject).toEqual(SUBJECT);
    expect(parseManifest(bytes({ mediaType: OCI_ARTIFACT_MANIFEST, artifactType: 'application/x.y' }), OCI_ARTIFACT_MANIFEST).references).toEqual([]);
    expect(refusal({ mediaType: OCI_ARTIFACT_MANIFEST, blobs: [] }, OCI_ARTIFACT_MANIFEST)).toMatch(/artifactType: required/);
  });

  it('foreign layers with urls need not exist; without urls they must', () => {
    const foreign = { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: LAYER_B.digest, size: 7, urls: ['https://example.com/layer'] };
    const config = { ...CONFIG, mediaType: 'application/vnd.docker.container.image.v1+json' };
    const parsed = parseManifest(bytes({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config, layers: [foreign] }), DOCKER_MANIFEST);
    expect(parsed.references.find((reference) => reference.digest === LAYER_B.digest)?.mustExist).toBe(false);
    const { urls: _, ...local } = foreign;
    expect(parseManifest(bytes({ schemaVersion: 2, mediaType: DOCKER_MANIFEST, config, layers: [local] }), DOCKER_MANIFEST).references[1]?.mustExist).toBe(true);
  });

  it('a layer listed twice is one reference', () => {
    expect(parseManifest(bytes(ociManifest({ layers: [LAYER_A, LAYER_A] })), OCI_MANIFEST).references).toHaveLength(2);
  });

  it('computes the digest with the algorithm asked for (a PUT by sha512 digest)', () => {
    const body = bytes(ociManifest());
    expect(parseManifest(body, OCI_MANIFEST, { digestAlgorithm: 'sha512' }).digest).toBe(`sha512:${createHash('sha512').update(body).digest('hex')}`);
  });

  it('embedded data that matches size and digest is accepted', () => {
    const data = Buffer.from('{}');
    const empty = { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(data), size: 2, data: data.toString('base64') };
    expect(parseManifest(bytes(ociManifest({ config: empty, layers: [] })), OCI_MANIFEST).artifactType).toBe('application/vnd.oci.empty.v1+json');
  });
});

describe('media type: Content-Type and the mediaType field', () => {
  it('ignores Content-Type parameters and case', () => {
    expect(parseManifest(bytes(ociManifest()), `${OCI_MANIFEST}; charset=utf-8`).mediaType).toBe(OCI_MANIFEST);
    expect(parseManifest(bytes(ociManifest()), OCI_MANIFEST.toUpperCase()).mediaType).toBe(OCI_MANIFEST);
    expect(contentTypeMediaType(' Application/JSON ; q=1')).toBe('application/json');
    expect(contentTypeMediaType('')).toBeUndefined();
  });

  it('an OCI manifest without a mediaType field takes the Content-Type', () => {
    const { mediaType: _, ...bare } = ociManifest();
    expect(parseManifest(bytes(bare), OCI_MANIFEST).mediaType).toBe(OCI_MANIFEST);
  });

  it('without Content-Type, the mediaType field decides; without either, refused naming Content-Type', () => {
    expect(parseManifest(bytes(ociManifest()), undefined).mediaType).toBe(OCI_MANIFEST);
    const { mediaType: _, ...bare } = ociManifest();
    expect(refusal(bare, null)).toMatch(/Content-Type: missing/);
  });

  it('refuses a mediaType field that disagrees with the Content-Type', () => {
    expect(refusal(ociManifest(), OCI_INDEX)).toMatch(/mediaType: "application\/vnd.oci.image.manifest.v1\+json" does not match the Content-Type "application\/vnd.oci.image.index.v1\+json"/);
  });

  it('refuses unknown media types, Docker schema 1 included, listing the accepted ones', () => {
    for (const type of ['application/vnd.docker.distribution.manifest.v1+prettyjws', 'application/json', 'text/plain', 'application/octet-stream']) {
      expect(refusal(ociManifest({ mediaType: undefined }), type)).toMatch(new RegExp(`unsupported manifest media type "${type.replace(/[.+]/g, '\\$&')}"; accepted: .*${OCI_INDEX.replace(/[.+]/g, '\\$&')}`));
    }
  });

  it('refuses an image manifest shaped like an index and the reverse', () => {
    expect(refusal(ociManifest({ manifests: [] }))).toMatch(/^manifest invalid: manifests: an image manifest has no manifests field/);
    expect(refusal({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [], layers: [] }, OCI_INDEX)).toMatch(/^manifest invalid: layers: an index has no config or layers/);
  });

  it('Docker manifests must carry their mediaType field', () => {
    const config = { ...CONFIG, mediaType: 'application/vnd.docker.container.image.v1+json' };
    expect(refusal({ schemaVersion: 2, config, layers: [] }, DOCKER_MANIFEST)).toMatch(/mediaType: required in a Docker manifest/);
    expect(refusal({ schemaVersion: 2, manifests: [] }, DOCKER_MANIFEST_LIST)).toMatch(/mediaType: required in a Docker manifest/);
  });
});

describe('structure: refusals name the field', () => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['schemaVersion 1', ociManifest({ schemaVersion: 1 }), /schemaVersion: expected 2, got 1/],
    ['schemaVersion "2"', ociManifest({ schemaVersion: '2' }), /schemaVersion: expected 2, got "2"/],
    ['no config', ociManifest({ config: undefined }), /config: expected an object, got undefined/],
    ['config without digest', ociManifest({ config: { ...CONFIG, digest: undefined } }), /config\.digest: expected a digest string/],
    ['no layers', ociManifest({ layers: undefined }), /layers: expected an array, got undefined/],
    ['layers an object', ociManifest({ layers: {} }), /layers: expected an array, got an object/],
    ['a layer digest of the wrong length', ociManifest({ layers: [LAYER_A, { ...LAYER_B, digest: 'sha256:abc' }] }), /layers\[1\]\.digest: "sha256:abc" is not a digest/],
    ['an upper-case digest', ociManifest({ layers: [{ ...LAYER_A, digest: LAYER_A.digest.toUpperCase() }] }), /layers\[0\]\.digest: .* is not a digest/],
    ['a negative size', ociManifest({ layers: [{ ...LAYER_A, size: -1 }] }), /layers\[0\]\.size: expected a non-negative integer, got -1/],
    ['a fractional size', ociManifest({ layers: [{ ...LAYER_A, size: 1.5 }] }), /layers\[0\]\.size: expected a non-negative integer, got 1\.5/],
    ['a size string', ociManifest({ layers: [{ ...LAYER_A, size: '7' }] }), /layers\[0\]\.size: expected a non-negative integer, got "7"/],
    ['a size beyond 2^53', ociManifest({ layers: [{ ...LAYER_A, size: 2 ** 60 }] }), /layers\[0\]\.size: expected a non-negative integer/],
    ['a mediaType number', ociManifest({ layers: [{ ...LAYER_A, mediaType: 7 }] }), /layers\[0\]\.mediaType: expected a media type string, got 7/],
    ['a mediaType that is not type/subtype', ociManifest({ layers: [{ ...LAYER_A, mediaType: 'gzip' }] }), /layers\[0\]\.mediaType: "gzip" is not a media type/],
    ['a mediaType field with parameters', ociManifest({ mediaType: `${OCI_MANIFEST}; x=y` }), /^manifest invalid: mediaType: .* is not a media type/],
    ['an annotation number', ociManifest({ annotations: { 'org.example': 1 } }), /annotations\["org\.example"\]: annotation values must be strings, got 1/],
    ['annotations an array', ociManifest({ annotations: ['a'] }), /annotations: expected an object, got an array/],
    ['a descriptor annotation null', ociManifest({ config: { ...CONFIG, annotations: { a: null } } }), /config\.annotations\["a"\]: annotation values must be strings, got null/],
    ['urls not strings', ociManifest({ layers: [{ ...LAYER_A, urls: [1] }] }), /layers\[0\]\.urls\[0\]: expected a string, got 1/],
    ['an artifactType that is not a media type', ociManifest({ artifactType: 'sbom' }), /^manifest invalid: artifactType: "sbom" is not a media type/],
    ['a subject without size', ociManifest({ subject: { ...SUBJECT, size: undefined } }), /subject\.size: expected a non-negative integer, got undefined/],
    ['a subject string', ociManifest({ subject: SUBJECT.digest }), /subject: expected an object, got "sha256:/],
    ['data that is not base64', ociManifest({ config: { ...CONFIG, data: '%%%' } }), /config\.data: expected base64/],
    ['data of the wrong size', ociManifest({ config: { ...CONFIG, data: Buffer.from('conf').toString('base64') } }), /config\.data: decodes to 4 bytes, but size is 6/],
    ['data of the wrong content', ociManifest({ config: { ...CONFIG, data: Buffer.from('CONFIG').toString('base64') } }), /config\.data: decodes to content with digest sha256:[0-9a-f]{64}, not sha256:/],
  ];
  for (const [what, document, message] of cases) it(`${what}`, () => expect(refusal(document)).toMatch(message));

  it('index entries: manifests must be an array of descriptors; platform needs architecture and os', () => {
    const index = (manifests: unknown) => ({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
    expect(refusal(index(undefined), OCI_INDEX)).toMatch(/manifests: expected an array, got undefined/);
    expect(refusal(index([null]), OCI_INDEX)).toMatch(/manifests\[0\]: expected an object, got null/);
    expect(refusal(index([{ ...SUBJECT, platform: { architecture: 'amd64' } }]), OCI_INDEX)).toMatch(/manifests\[0\]\.platform\.os: expected a string, got undefined/);
    expect(refusal(index([{ ...SUBJECT, platform: 'linux/amd64' }]), OCI_INDEX)).toMatch(/manifests\[0\]\.platform: expected an object/);
  });

  it('not JSON, not UTF-8, not an object', () => {
    expect(refusal('{"schemaVersion": 2,')).toMatch(/^manifest invalid: not UTF-8 JSON/);
    expect(refusal('')).toMatch(/^manifest invalid: not UTF-8 JSON/);
    expect(() => parseManifest(Buffer.from([0x7b, 0xff, 0x7d]), OCI_MANIFEST)).toThrow(/not UTF-8 JSON/);
    expect(refusal('[1, 2]')).toMatch(/^manifest invalid: manifest: expected a JSON object, got an array/);
    expect(refusal('"manifest"')).toMatch(/expected a JSON object, got "manifest"/);
  });

  it('a UTF-8 byte order mark before the JSON: refused (RFC 8259 section 8.1; Go clients cannot parse it)', () => {
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes(ociManifest())]);
    expect(() => parseManifest(withBom, OCI_MANIFEST)).toThrow(/^manifest invalid: not UTF-8 JSON/);
  });
});

describe('size limit (distribution-spec "Pushing Manifests": at least 4 MiB accepted, 413 above the limit)', () => {
  const padded = (total: number) => {
    const body = bytes(ociManifest());
    return Buffer.concat([body, Buffer.alloc(total - body.length, 0x20)]);
  };

  it('accepts a manifest of exactly 4 MiB', () => {
    expect(parseManifest(padded(MAX_MANIFEST_BYTES), OCI_MANIFEST).size).toBe(MAX_MANIFEST_BYTES);
  });

  it('refuses one byte more with ManifestTooLargeError (MANIFEST_INVALID, for the 413 mapping)', () => {
    let thrown: unknown;
    try {
      parseManifest(padded(MAX_MANIFEST_BYTES + 1), OCI_MANIFEST);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ManifestTooLargeError);
    expect((thrown as ManifestTooLargeError).code).toBe('MANIFEST_INVALID');
    expect((thrown as ManifestTooLargeError).size).toBe(MAX_MANIFEST_BYTES + 1);
    expect((thrown as Error).message).toMatch(/4194305 bytes is over the 4194304-byte limit/);
  });
});

describe('properties: whatever the input, the only failure is a MirrorError', () => {
  const contentTypes = fc.oneof(
    fc.constantFrom(undefined, OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_ARTIFACT_MANIFEST, `${OCI_MANIFEST};charset=utf-8`, ''),
    fc.string({ maxLength: 40 }),
  );

  function onlyMirrorErrors(body: Uint8Array, contentType: string | undefined): boolean {
    try {
      const parsed = parseManifest(body, contentType);
      return parsed.size === body.length && parsed.digest === sha256(body);
    } catch (error) {
      if (!(error instanceof MirrorError) || error.code !== 'MANIFEST_INVALID') throw error;
      return true;
    }
  }

  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), contentTypes, onlyMirrorErrors), { numRuns: 500 });
  });

  it('random JSON documents', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), contentTypes, (value, type) => onlyMirrorErrors(bytes(value), type)), { numRuns: 500 });
  });

  it('valid manifests with one field replaced by any JSON value', () => {
    const documents = fc.constantFrom<[Record<string, unknown>, string]>(
      [ociManifest({ subject: SUBJECT, annotations: { a: 'b' } }), OCI_MANIFEST],
      [{ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ ...SUBJECT, platform: { architecture: 'arm64', os: 'linux' } }] }, OCI_INDEX],
      [{ mediaType: OCI_ARTIFACT_MANIFEST, artifactType: 'application/x.y', blobs: [LAYER_A], subject: SUBJECT }, OCI_ARTIFACT_MANIFEST],
    );
    const paths = fc.constantFrom('schemaVersion', 'mediaType', 'config', 'layers', 'manifests', 'blobs', 'subject', 'annotations', 'artifactType',
      'config.size', 'config.digest', 'config.mediaType', 'layers.0', 'layers.1.size', 'manifests.0.platform', 'subject.digest', 'blobs.0.data', 'config.annotations');
    fc.assert(fc.property(documents, paths, fc.jsonValue({ maxDepth: 3 }), ([document, type], path, replacement) => {
      const copy = structuredClone(document);
      setPath(copy, path.split('.'), replacement);
      return onlyMirrorErrors(bytes(copy), type);
    }), { numRuns: 1000 });
  });

  it('generated valid image manifests are accepted with their config and layers as references', () => {
    const hex = fc.stringMatching(/^[0-9a-f]{64}$/);
    const descriptor = fc.record({ mediaType: fc.constantFrom(LAYER_A.mediaType, 'application/vnd.example.blob+json'), digest: hex.map((h) => `sha256:${h}`), size: fc.nat() });
    fc.assert(fc.property(descriptor, fc.array(descriptor, { maxLength: 8 }), (config, layers) => {
      const parsed = parseManifest(bytes({ schemaVersion: 2, mediaType: OCI_MANIFEST, config, layers }), OCI_MANIFEST);
      expect(parsed.references.map((reference) => reference.digest)).toEqual([...new Set([config.digest, ...layers.map((layer) => layer.digest)])]);
      expect(parsed.artifactType).toBe(config.mediaType);
    }), { numRuns: 300 });
  });
});

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  if (rest.length === 0) {
    target[head] = value;
    return;
  }
  const next = target[head];
  if (typeof next === 'object' && next !== null) setPath(next as Record<string, unknown>, rest, value);
}

describe('manifestRecord / requiredReferences (hosted/manifest-record.ts)', () => {
  it('keeps digests of references, the subject digest, artifactType and annotations; foreign layers are not required', async () => {
    const { manifestRecord, requiredReferences } = await import('../../src/hosted/manifest-record.js');
    const foreign = { mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', digest: LAYER_B.digest, size: 7, urls: ['https://example.com/b'] };
    const body = bytes(ociManifest({ layers: [LAYER_A, foreign], subject: SUBJECT, annotations: { x: 'y' } }));
    const parsed = parseManifest(body, OCI_MANIFEST);
    expect(manifestRecord(parsed)).toEqual({
      digest: sha256(body),
      mediaType: OCI_MANIFEST,
      size: body.length,
      references: [CONFIG.digest, LAYER_A.digest, LAYER_B.digest],
      subject: SUBJECT.digest,
      artifactType: CONFIG.mediaType,
      annotations: { x: 'y' },
    });
    expect(requiredReferences(parsed).map((reference) => reference.digest)).toEqual([CONFIG.digest, LAYER_A.digest]);
  });
});
