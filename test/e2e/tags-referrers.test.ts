/**
 * Tag lists (distribution-spec "Listing Tags") from the upstream, and from the tags this mirror
 * knows while the upstream is down; referrers (distribution-spec v1.1 "Listing Referrers") from
 * the upstream's API, its tag-schema fallback, or an empty index.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { get } from '../helpers/http.js';
import { type Descriptor, makeImage, MEDIA_TYPES, pushImage } from '../helpers/test-images.js';
import { type E2eSetup, errorCode, startE2e } from './e2e-fixture.js';

const REPO = 'library/postgres';
const OCI_INDEX = MEDIA_TYPES.oci.index;
const SBOM = 'application/vnd.example.sbom.v1+json';
const SIGNATURE = 'application/vnd.example.signature.v1+json';

let e2e: E2eSetup | undefined;
afterEach(async () => {
  await e2e?.close();
  e2e = undefined;
});

interface IndexBody {
  schemaVersion: number;
  mediaType: string;
  manifests: Array<Descriptor & { artifactType?: string }>;
}

function parse<T>(body: Buffer): T {
  return JSON.parse(body.toString('utf8')) as T;
}

describe('tags/list', () => {
  it('comes from the upstream', async () => {
    e2e = await startE2e();
    for (const tag of ['16', '15', 'latest']) pushImage(e2e.fake, REPO, tag, makeImage({ layers: [10], seed: `tags-${tag}` }));
    const response = await get(e2e.url(`/v2/${REPO}/tags/list`));
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(parse(response.body)).toEqual({ name: REPO, tags: ['15', '16', 'latest'] });
    expect(e2e.fake.count({ server: 'registry', method: 'GET', status: 200, pathIncludes: `/v2/${REPO}/tags/list` })).toBe(1);
  });

  it('passes n and last through and points Link at the mirror', async () => {
    e2e = await startE2e();
    for (const tag of ['a', 'b', 'c']) pushImage(e2e.fake, REPO, tag, makeImage({ layers: [10], seed: `page-${tag}` }));
    const first = await get(e2e.url(`/v2/${REPO}/tags/list?n=2`));
    expect(first.status).toBe(200);
    expect(parse(first.body)).toEqual({ name: REPO, tags: ['a', 'b'] });
    const link = first.headers.link as string;
    expect(link).toBe(`</v2/${REPO}/tags/list?n=2&last=b>; rel="next"`);
    const second = await get(e2e.url(link.slice(1, link.indexOf('>'))));
    expect(parse(second.body)).toEqual({ name: REPO, tags: ['c'] });
  });

  it('comes from the tags this mirror knows when the upstream answers 503', async () => {
    e2e = await startE2e();
    for (const tag of ['1.0', '2.0', '3.0']) pushImage(e2e.fake, REPO, tag, makeImage({ layers: [10], seed: `known-${tag}` }));
    for (const tag of ['1.0', '3.0']) expect((await get(e2e.url(`/v2/${REPO}/manifests/${tag}`))).status).toBe(200);
    e2e.fake.setFault('tags', { status: 503 });
    e2e.fake.resetCounts();
    const response = await get(e2e.url(`/v2/${REPO}/tags/list`));
    expect(response.status).toBe(200);
    expect(parse(response.body)).toEqual({ name: REPO, tags: ['1.0', '3.0'] });
    expect(e2e.fake.count({ server: 'registry', pathIncludes: '/tags/list', status: 503 })).toBe(1);
  });

  it('an unknown repository answers 404 NAME_UNKNOWN', async () => {
    e2e = await startE2e();
    const response = await get(e2e.url('/v2/library/none/tags/list'));
    expect(response.status).toBe(404);
    expect(errorCode(response)).toBe('NAME_UNKNOWN');
  });
});

describe('referrers', () => {
  /** A subject image plus two artifacts that refer to it. */
  function pushSubjectWithReferrers(setup: E2eSetup) {
    const subject = makeImage({ layers: [100], seed: 'subject' });
    pushImage(setup.fake, REPO, 'v1', subject);
    const sbom = makeImage({ layers: [20], seed: 'sbom', subject: subject.manifest, artifactType: SBOM });
    const signature = makeImage({ layers: [20], seed: 'sig', subject: subject.manifest, artifactType: SIGNATURE });
    pushImage(setup.fake, REPO, undefined, sbom);
    pushImage(setup.fake, REPO, undefined, signature);
    return { subject, sbom, signature };
  }

  it('come from the upstream referrers API when it has one', async () => {
    e2e = await startE2e({ fake: { referrersApi: true } });
    const { subject, sbom, signature } = pushSubjectWithReferrers(e2e);
    const response = await get(e2e.url(`/v2/${REPO}/referrers/${subject.manifest.digest}`));
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe(OCI_INDEX);
    const index = parse<IndexBody>(response.body);
    expect(index.mediaType).toBe(OCI_INDEX);
    expect(index.manifests.map((m) => m.digest).sort()).toEqual([sbom.manifest.digest, signature.manifest.digest].sort());
    expect(e2e.fake.count({ server: 'registry', method: 'GET', status: 200, pathIncludes: `/referrers/${subject.manifest.digest}` })).toBe(1);

    const filtered = await get(e2e.url(`/v2/${REPO}/referrers/${subject.manifest.digest}?artifactType=${encodeURIComponent(SBOM)}`));
    expect(filtered.status).toBe(200);
    expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
    expect(parse<IndexBody>(filtered.body).manifests.map((m) => m.digest)).toEqual([sbom.manifest.digest]);
  });

  it('fall back to the tag schema sha256-<hex> index when the upstream has no API', async () => {
    e2e = await startE2e();
    const { subject, sbom, signature } = pushSubjectWithReferrers(e2e);
    const descriptors = [
      { mediaType: sbom.manifest.mediaType, digest: sbom.manifest.digest, size: sbom.manifest.size, artifactType: SBOM },
      { mediaType: signature.manifest.mediaType, digest: signature.manifest.digest, size: signature.manifest.size, artifactType: SIGNATURE },
    ];
    const fallback = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: descriptors }));
    e2e.fake.putManifest(REPO, fallback, OCI_INDEX, `sha256-${subject.manifest.digest.slice('sha256:'.length)}`);

    const response = await get(e2e.url(`/v2/${REPO}/referrers/${subject.manifest.digest}`));
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe(OCI_INDEX);
    const index = parse<IndexBody>(response.body);
    expect(index).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: descriptors });

    const filtered = await get(e2e.url(`/v2/${REPO}/referrers/${subject.manifest.digest}?artifactType=${encodeURIComponent(SIGNATURE)}`));
    expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
    expect(parse<IndexBody>(filtered.body).manifests).toEqual([descriptors[1]]);
  });

  it('are an empty OCI index when the upstream has neither', async () => {
    e2e = await startE2e();
    const { subject } = pushSubjectWithReferrers(e2e);
    const response = await get(e2e.url(`/v2/${REPO}/referrers/${subject.manifest.digest}`));
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toBe(OCI_INDEX);
    expect(parse(response.body)).toEqual({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
  });
});
