/**
 * Pull basics through the real mirror (issue 2): the base endpoint, manifests of every modern
 * type by tag and by digest, HEAD without bodies or blob downloads, byte ranges (RFC 9110
 * section 14), and Docker Hub's `library/` rule.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { get, head, sha256 } from '../helpers/http.js';
import { MEDIA_TYPES, makeImage, makeIndex, pushImage, type TestBlob } from '../helpers/test-images.js';
import { blobGets, errorCode, type E2eSetup, startE2e } from './e2e-fixture.js';

const REPO = 'library/alpine';

let e2e: E2eSetup;
const schema2 = makeImage({ layers: [4096, 70_000], seed: 'basics-docker', mediaTypes: 'docker' });
const armImage = makeImage({ layers: [2048], seed: 'basics-arm', mediaTypes: 'docker', platform: { architecture: 'arm64', os: 'linux' } });
const manifestList = makeIndex([schema2, armImage], 'docker');
const ociImage = makeImage({ layers: [1000], seed: 'basics-oci' });
const ociIndex = makeIndex([ociImage], 'oci');

beforeAll(async () => {
  e2e = await startE2e();
  pushImage(e2e.fake, REPO, 'schema2', schema2);
  pushImage(e2e.fake, REPO, 'list', manifestList);
  pushImage(e2e.fake, REPO, 'oci', ociIndex);
});

afterAll(async () => {
  await e2e?.close();
});

describe('GET /v2/', () => {
  it('answers 200 with the distribution API version header', async () => {
    const response = await get(e2e.url('/v2/'));
    expect(response.status).toBe(200);
    expect(response.headers['docker-distribution-api-version']).toBe('registry/2.0');
  });
});

describe('manifests', () => {
  const cases: Array<[string, string, TestBlob]> = [
    ['Docker schema2 manifest', 'schema2', schema2.manifest],
    ['Docker manifest list', 'list', manifestList.manifest],
    ['OCI image index', 'oci', ociIndex.manifest],
  ];

  for (const [kind, tag, manifest] of cases) {
    it(`${kind}: by tag and by digest, exactly the upstream bytes and headers`, async () => {
      for (const reference of [tag, manifest.digest]) {
        const response = await get(e2e.url(`/v2/${REPO}/manifests/${reference}`));
        expect(response.status).toBe(200);
        expect(response.body.equals(manifest.bytes)).toBe(true);
        expect(response.headers['content-type']).toBe(manifest.mediaType);
        expect(response.headers['content-length']).toBe(String(manifest.size));
        expect(response.headers['docker-content-digest']).toBe(manifest.digest);
        expect(response.headers['docker-distribution-api-version']).toBe('registry/2.0');
      }
    });

    it(`${kind}: HEAD gives the same headers and no body`, async () => {
      const response = await head(e2e.url(`/v2/${REPO}/manifests/${tag}`));
      expect(response.status).toBe(200);
      expect(response.body.length).toBe(0);
      expect(response.headers['content-type']).toBe(manifest.mediaType);
      expect(response.headers['content-length']).toBe(String(manifest.size));
      expect(response.headers['docker-content-digest']).toBe(manifest.digest);
    });
  }

  it('serves the child manifests of an index by digest', async () => {
    for (const child of manifestList.images) {
      const response = await get(e2e.url(`/v2/${REPO}/manifests/${child.manifest.digest}`));
      expect(response.status).toBe(200);
      expect(response.body.equals(child.manifest.bytes)).toBe(true);
      expect(response.headers['docker-content-digest']).toBe(child.manifest.digest);
    }
  });
});

describe('blobs', () => {
  it('GET returns the exact bytes with the digest header, on a first and a repeated request', async () => {
    for (const pass of ['first', 'repeated']) {
      for (const blob of [schema2.config, ...schema2.layers]) {
        const response = await get(e2e.url(`/v2/${REPO}/blobs/${blob.digest}`));
        expect(response.status, pass).toBe(200);
        expect(sha256(response.body)).toBe(blob.digest);
        expect(response.headers['content-length']).toBe(String(blob.size));
        expect(response.headers['docker-content-digest']).toBe(blob.digest);
        // These bodies are written straight to the socket; the header must still be there.
        expect(response.headers['docker-distribution-api-version'], pass).toBe('registry/2.0');
      }
    }
  });

  it('HEAD of an uncached blob gives its size and digest without downloading it', async () => {
    const blob = armImage.layers[0]!;
    e2e.fake.resetCounts();
    const response = await head(e2e.url(`/v2/${REPO}/blobs/${blob.digest}`));
    expect(response.status).toBe(200);
    expect(response.body.length).toBe(0);
    expect(response.headers['content-length']).toBe(String(blob.size));
    expect(response.headers['docker-content-digest']).toBe(blob.digest);
    expect(blobGets(e2e.fake)).toBe(0);
    expect(e2e.fake.count({ server: 'cdn', method: 'GET' })).toBe(0);
    expect(e2e.fake.count({ server: 'registry', method: 'GET', pathIncludes: '/blobs/' })).toBe(0);
    expect(e2e.mirror.mirror.downloads.list().filter((download) => download.digest === blob.digest)).toEqual([]);
  });

  it('HEAD of a cached blob goes nowhere upstream', async () => {
    const blob = schema2.layers[0]!;
    await get(e2e.url(`/v2/${REPO}/blobs/${blob.digest}`));
    e2e.fake.resetCounts();
    const response = await head(e2e.url(`/v2/${REPO}/blobs/${blob.digest}`));
    expect(response.status).toBe(200);
    expect(response.headers['content-length']).toBe(String(blob.size));
    expect(e2e.fake.requests.length).toBe(0);
  });
});

describe('byte ranges (RFC 9110 section 14)', () => {
  // One uncached blob (ranges served from the download in flight) and one cached blob.
  const uncached = ociImage.layers[0]!;
  const cached = schema2.layers[1]!;

  for (const [label, blob] of [['uncached', uncached], ['cached', cached]] as const) {
    it(`${label}: bytes=0-9, bytes=-5 and bytes=5- answer 206 with Content-Range`, async () => {
      const url = e2e.url(`/v2/${REPO}/blobs/${blob.digest}`);
      const expectations: Array<[string, number, number]> = [
        ['bytes=0-9', 0, 9],
        ['bytes=-5', blob.size - 5, blob.size - 1],
        ['bytes=5-', 5, blob.size - 1],
      ];
      for (const [range, start, end] of expectations) {
        const response = await get(url, { range });
        expect(response.status, range).toBe(206);
        expect(response.headers['content-range'], range).toBe(`bytes ${start}-${end}/${blob.size}`);
        expect(response.headers['content-length'], range).toBe(String(end - start + 1));
        expect(response.body.equals(blob.bytes.subarray(start, end + 1)), range).toBe(true);
      }
    });
  }

  it('a range past the end answers 416 with an OCI error body', async () => {
    const url = e2e.url(`/v2/${REPO}/blobs/${cached.digest}`);
    for (const range of [`bytes=${cached.size}-`, `bytes=${cached.size + 10}-${cached.size + 20}`]) {
      const response = await get(url, { range });
      expect(response.status, range).toBe(416);
      expect(response.headers['content-range'], range).toBe(`bytes */${cached.size}`);
      expect(errorCode(response), range).toBe('RANGE_INVALID');
    }
  });

  it('a Range in a unit other than bytes is ignored (RFC 9110 section 14.2): the whole blob', async () => {
    const response = await get(e2e.url(`/v2/${REPO}/blobs/${cached.digest}`), { range: 'items=0-1' });
    expect(response.status).toBe(200);
    expect(response.headers['content-range']).toBeUndefined();
    expect(response.body.equals(cached.bytes)).toBe(true);
  });

  it("If-Range: the range only when it names the blob's ETag, otherwise the whole blob (RFC 9110 section 13.1.5)", async () => {
    const url = e2e.url(`/v2/${REPO}/blobs/${cached.digest}`);
    const matching = await get(url, { range: 'bytes=0-9', 'if-range': `"${cached.digest}"` });
    expect([matching.status, matching.body.equals(cached.bytes.subarray(0, 10))]).toEqual([206, true]);
    for (const ifRange of ['"sha256:0000"', `W/"${cached.digest}"`, 'Wed, 21 Oct 2015 07:28:00 GMT']) {
      const other = await get(url, { range: 'bytes=0-9', 'if-range': ifRange });
      expect([other.status, other.headers['content-range'], other.body.equals(cached.bytes)], ifRange).toEqual([200, undefined, true]);
    }
  });
});

describe('If-None-Match (RFC 9110 section 13.1.2): 304 when it names the ETag, the digest', () => {
  const blob = schema2.layers[0]!;
  const missing = `sha256:${'0'.repeat(64)}`;

  it('a blob: 304 without a body for its ETag, weak or strong, in a list, or *; the blob for another tag', async () => {
    const url = e2e.url(`/v2/${REPO}/blobs/${blob.digest}`);
    for (const ifNoneMatch of [`"${blob.digest}"`, `W/"${blob.digest}"`, `"sha256:1111", "${blob.digest}"`, '*']) {
      for (const send of [get, head]) {
        const response = await send(url, { 'if-none-match': ifNoneMatch });
        expect([response.status, response.body.length, response.headers.etag, response.headers['docker-content-digest']], `${send.name} ${ifNoneMatch}`).toEqual([304, 0, `"${blob.digest}"`, blob.digest]);
      }
    }
    const other = await get(url, { 'if-none-match': '"sha256:1111"' });
    expect([other.status, sha256(other.body)]).toEqual([200, blob.digest]);
  });

  it('a blob that does not exist: 404, not 304, for any If-None-Match', async () => {
    for (const ifNoneMatch of [`"${missing}"`, '*']) {
      const response = await get(e2e.url(`/v2/${REPO}/blobs/${missing}`), { 'if-none-match': ifNoneMatch });
      expect([response.status, errorCode(response)], ifNoneMatch).toEqual([404, 'BLOB_UNKNOWN']);
    }
  });

  it('a manifest by tag: 304 for the digest the tag points at, the manifest for an older one', async () => {
    const url = e2e.url(`/v2/${REPO}/manifests/schema2`);
    const accept = { accept: schema2.manifest.mediaType };
    const current = await get(url, { ...accept, 'if-none-match': `"${schema2.manifest.digest}"` });
    expect([current.status, current.body.length, current.headers.etag, current.headers['docker-content-digest']]).toEqual([304, 0, `"${schema2.manifest.digest}"`, schema2.manifest.digest]);
    const older = await get(url, { ...accept, 'if-none-match': `"${armImage.manifest.digest}"` });
    expect([older.status, older.body.equals(schema2.manifest.bytes)]).toEqual([200, true]);
    const byHead = await head(url, { ...accept, 'if-none-match': `"${schema2.manifest.digest}"` });
    expect(byHead.status).toBe(304);
  });
});

describe('docker.io library/ rule', () => {
  it('/v2/busybox/... reaches upstream library/busybox', async () => {
    const image = makeImage({ layers: [512], seed: 'library-rule', mediaTypes: 'docker' });
    pushImage(e2e.fake, 'library/busybox', 'stable', image);
    e2e.fake.resetCounts();
    const manifest = await get(e2e.url('/v2/busybox/manifests/stable'));
    expect(manifest.status).toBe(200);
    expect(manifest.body.equals(image.manifest.bytes)).toBe(true);
    const blob = await get(e2e.url(`/v2/busybox/blobs/${image.layers[0]!.digest}`));
    expect(blob.status).toBe(200);
    expect(sha256(blob.body)).toBe(image.layers[0]!.digest);
    expect(e2e.fake.count({ server: 'registry', method: 'GET', pathIncludes: '/v2/library/busybox/manifests/stable' })).toBe(1);
    expect(e2e.fake.count({ server: 'registry', pathIncludes: '/v2/busybox/' })).toBe(0);
    expect(manifest.headers['content-type']).toBe(MEDIA_TYPES.docker.manifest);
  });
});
