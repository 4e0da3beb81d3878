/**
 * OCI distribution-spec v1.1 "Content Discovery" (listing tags, listing referrers), one test per
 * line of test/hosted/distribution-spec-checklist.md, against hosted repositories.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../helpers/http.js';
import { makeImage, makeIndex } from '../helpers/test-images.js';
import { call, errorCodes, header, pushImageTo, putManifest, startHosted, type HostedSetup } from './hosted-fixture.js';

let env: HostedSetup;
let base: string;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const TAGS = ['1.0', '1.1', '2.0', 'Latest', 'latest', 'v_1', 'zeta'];

interface TagList {
  name: string;
  tags: string[];
}

interface ReferrerEntry {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

const subject = makeImage({ layers: [10], seed: 'discovery-subject' });
const sbom = makeImage({ layers: [11], seed: 'discovery-sbom', subject: subject.manifest, artifactType: 'application/vnd.example.sbom.v1', annotations: { 'org.example.kind': 'sbom', 'org.opencontainers.image.created': '2024-06-01T00:00:00Z' } });
const signature = makeImage({ layers: [12], seed: 'discovery-sig', subject: subject.manifest, artifactType: 'application/vnd.example.sig.v1' });
/** An image manifest without artifactType: its config's media type stands in. */
const untyped = makeImage({ layers: [13], seed: 'discovery-untyped', subject: subject.manifest });
/** An index with a subject and no artifactType: listed without one. */
const indexReferrer = (() => {
  const index = makeIndex([makeImage({ layers: [14], seed: 'discovery-index-child' })]);
  const document = { ...(JSON.parse(index.manifest.bytes.toString()) as object), subject: { mediaType: subject.manifest.mediaType, digest: subject.manifest.digest, size: subject.manifest.size }, annotations: { 'org.example.kind': 'index' } };
  const bytes = Buffer.from(JSON.stringify(document));
  return { index, bytes, digest: sha256(bytes) };
})();

beforeAll(async () => {
  env = await startHosted();
  base = env.mirror.url;
  const image = makeImage({ layers: [20], seed: 'discovery-tags' });
  await pushImageTo(base, 'team/tags', TAGS[0], image);
  for (const tag of TAGS.slice(1)) await putManifest(base, 'team/tags', tag, image.manifest);
  await pushImageTo(base, 'team/empty', undefined, image);
  await pushImageTo(base, 'team/signed', 'v1', subject);
  for (const referrer of [sbom, signature, untyped]) await pushImageTo(base, 'team/signed', undefined, referrer);
  await pushImageTo(base, 'team/signed', undefined, indexReferrer.index.images[0]!);
  expect((await putManifest(base, 'team/signed', indexReferrer.digest, { bytes: indexReferrer.bytes, mediaType: OCI_INDEX })).status).toBe(201);
  // The same artifact in another repository is not a referrer in this one.
  await pushImageTo(base, 'team/other', undefined, sbom);
});
afterAll(async () => {
  await env?.close();
});

async function tags(query = '', repository = 'team/tags'): Promise<{ status: number; list?: TagList; link?: string }> {
  const response = await call(`${base}/v2/${repository}/tags/list${query}`);
  return { status: response.status, ...(response.status === 200 ? { list: JSON.parse(response.body.toString()) as TagList } : {}), ...(header(response, 'link') ? { link: header(response, 'link') } : {}) };
}

async function referrers(query = '', repository = 'team/signed', digest = subject.manifest.digest): Promise<{ status: number; entries: ReferrerEntry[]; headers: Record<string, string | undefined>; body: Record<string, unknown> }> {
  const response = await call(`${base}/v2/${repository}/referrers/${digest}${query}`);
  const body = response.status === 200 ? (JSON.parse(response.body.toString()) as Record<string, unknown>) : {};
  const headers = { contentType: header(response, 'content-type'), filters: header(response, 'oci-filters-applied'), link: header(response, 'link') };
  return { status: response.status, entries: (body.manifests as ReferrerEntry[] | undefined) ?? [], headers, body };
}

describe('Listing tags', () => {
  it('[D-01] GET /v2/<name>/tags/list of an existing repository: 200', async () => {
    expect((await tags()).status).toBe(200);
  });

  it('[D-02] a repository without tags lists none', async () => {
    expect((await tags('', 'team/empty')).list).toEqual({ name: 'team/empty', tags: [] });
  });

  it('[D-03] tags in lexical (code point) order', async () => {
    expect((await tags()).list!.tags).toEqual([...TAGS].sort());
    expect((await tags()).list!.tags).toEqual(['1.0', '1.1', '2.0', 'Latest', 'latest', 'v_1', 'zeta']);
  });

  it('[D-04] the body is {"name","tags"} as application/json', async () => {
    const response = await call(`${base}/v2/team/tags/tags/list`);
    expect(header(response, 'content-type')).toMatch(/^application\/json/);
    expect(Object.keys(JSON.parse(response.body.toString()) as object)).toEqual(['name', 'tags']);
  });

  it('[D-05] ?n=<int> returns exactly n tags when there are more', async () => {
    expect((await tags('?n=3')).list!.tags).toEqual(['1.0', '1.1', '2.0']);
    expect((await tags('?n=100')).list!.tags).toHaveLength(TAGS.length);
  });

  it('[D-06] a Link header whenever more tags follow', async () => {
    expect((await tags('?n=3')).link).toBeDefined();
    expect((await tags(`?n=${TAGS.length}`)).link).toBeUndefined();
  });

  it('[D-07] Link is RFC 5988 with rel="next", n and the last tag returned', async () => {
    const first = await tags('?n=3');
    expect(first.link).toBe('</v2/team/tags/tags/list?n=3&last=2.0>; rel="next"');
    const next = await call(new URL(/^<([^>]+)>/.exec(first.link!)![1]!, base).toString());
    expect((JSON.parse(next.body.toString()) as TagList).tags).toEqual(['Latest', 'latest', 'v_1']);
  });

  it('[D-08] ?n=0: an empty list and no Link', async () => {
    const zero = await tags('?n=0');
    expect(zero.list).toEqual({ name: 'team/tags', tags: [] });
    expect(zero.link).toBeUndefined();
  });

  it('[D-09] without last the list starts at the beginning', async () => {
    expect((await tags('?n=1')).list!.tags).toEqual(['1.0']);
  });

  it('[D-10] ?n&last: tags strictly after last, which need not exist', async () => {
    expect((await tags('?n=2&last=1.1')).list!.tags).toEqual(['2.0', 'Latest']);
    expect((await tags('?n=2&last=3')).list!.tags).toEqual(['Latest', 'latest']);
  });

  it('[D-05b] an n larger than any page is a page of them all, not an error', async () => {
    for (const n of ['1000000', '9'.repeat(30)]) {
      const answer = await tags(`?n=${n}`);
      expect(answer.status, n).toBe(200);
      expect(answer.list!.tags, n).toHaveLength(TAGS.length);
      expect(answer.link, n).toBeUndefined();
    }
  });

  it('[D-11] last without n: every tag after it', async () => {
    expect((await tags('?last=latest')).list!.tags).toEqual(['v_1', 'zeta']);
  });

  it('[D-12] an unknown repository: 404 NAME_UNKNOWN; a malformed n: 400', async () => {
    const unknown = await call(`${base}/v2/team/nothing-here/tags/list`);
    expect([unknown.status, errorCodes(unknown)]).toEqual([404, ['NAME_UNKNOWN']]);
    for (const n of ['-1', 'abc', '1.5']) expect((await tags(`?n=${n}`)).status, n).toBe(400);
  });
});

describe('Listing referrers', () => {
  it('[D-20] GET /v2/<name>/referrers/<digest>: 200', async () => {
    expect((await referrers()).status).toBe(200);
  });

  it('[D-21] never 404: a subject nobody refers to, one never pushed, an unknown repository all list nothing', async () => {
    for (const [repository, digest] of [['team/signed', sbom.manifest.digest], ['team/signed', sha256(Buffer.from('never pushed'))], ['team/no-such-repo', subject.manifest.digest]]) {
      const answer = await referrers('', repository, digest);
      expect(answer.status, `${repository}@${digest}`).toBe(200);
      expect(answer.entries).toEqual([]);
    }
  });

  it('[D-22] a malformed digest: 400 DIGEST_INVALID', async () => {
    const response = await call(`${base}/v2/team/signed/referrers/sha256:abc`);
    expect([response.status, errorCodes(response)]).toEqual([400, ['DIGEST_INVALID']]);
  });

  it('[D-23] the body is an OCI image index, served as one', async () => {
    const answer = await referrers();
    expect(answer.headers.contentType).toBe(OCI_INDEX);
    expect(answer.body).toMatchObject({ schemaVersion: 2, mediaType: OCI_INDEX });
  });

  it('[D-24] entries are descriptors of the manifests in this repository whose subject is the digest', async () => {
    const digests = (await referrers()).entries.map((entry) => entry.digest).sort();
    expect(digests).toEqual([sbom.manifest.digest, signature.manifest.digest, untyped.manifest.digest, indexReferrer.digest].sort());
    const sbomEntry = (await referrers()).entries.find((entry) => entry.digest === sbom.manifest.digest)!;
    expect(sbomEntry).toMatchObject({ mediaType: sbom.manifest.mediaType, size: sbom.manifest.size });
  });

  it("[D-25] an entry's artifactType is the manifest's", async () => {
    const entry = (await referrers()).entries.find((candidate) => candidate.digest === signature.manifest.digest)!;
    expect(entry.artifactType).toBe('application/vnd.example.sig.v1');
  });

  it("[D-26] an image manifest without artifactType: its config's media type", async () => {
    const entry = (await referrers()).entries.find((candidate) => candidate.digest === untyped.manifest.digest)!;
    expect(entry.artifactType).toBe(untyped.config.mediaType);
  });

  it('[D-27] an index without artifactType: no artifactType', async () => {
    const entry = (await referrers()).entries.find((candidate) => candidate.digest === indexReferrer.digest)!;
    expect(entry).not.toHaveProperty('artifactType');
    expect(entry.mediaType).toBe(OCI_INDEX);
  });

  it("[D-28] an entry carries the manifest's annotations, all of them unchanged", async () => {
    const entries = (await referrers()).entries;
    expect(entries.find((entry) => entry.digest === sbom.manifest.digest)!.annotations).toEqual({ 'org.example.kind': 'sbom', 'org.opencontainers.image.created': '2024-06-01T00:00:00Z' });
    expect(entries.find((entry) => entry.digest === indexReferrer.digest)!.annotations).toEqual({ 'org.example.kind': 'index' });
  });

  it('[D-29] no referrers: 200 with "manifests": []', async () => {
    const answer = await referrers('', 'team/tags');
    expect(answer.status).toBe(200);
    expect(answer.body.manifests).toEqual([]);
  });

  it('[D-30] a list longer than a page: a Link with rel="next", each page an index of other descriptors', async () => {
    const seen: string[] = [];
    let url: string | undefined = `${base}/v2/team/signed/referrers/${subject.manifest.digest}?n=3`;
    for (let pages = 0; url && pages < 5; pages++) {
      const response = await call(url);
      const body = JSON.parse(response.body.toString()) as { mediaType: string; manifests: ReferrerEntry[] };
      expect(body.mediaType).toBe(OCI_INDEX);
      seen.push(...body.manifests.map((entry) => entry.digest));
      const link = header(response, 'link');
      if (link) expect(link).toMatch(/^<\/v2\/team\/signed\/referrers\/sha256:[0-9a-f]{64}\?n=3&last=sha256%3A[0-9a-f]{64}>; rel="next"$/);
      url = link ? new URL(/^<([^>]+)>/.exec(link)![1]!, base).toString() : undefined;
    }
    expect(seen).toHaveLength(4);
    expect(new Set(seen).size).toBe(4);
  });

  it('[D-31] ?artifactType= lists only entries of that type', async () => {
    const answer = await referrers('?artifactType=application/vnd.example.sbom.v1');
    expect(answer.entries.map((entry) => entry.digest)).toEqual([sbom.manifest.digest]);
  });

  it('[D-32] a filtered answer carries OCI-Filters-Applied: artifactType; an unfiltered one does not', async () => {
    expect((await referrers('?artifactType=application/vnd.example.sbom.v1')).headers.filters).toBe('artifactType');
    expect((await referrers()).headers.filters).toBeUndefined();
  });

  it('[D-33] OCI-Filters-Applied lists the filters applied (artifactType is the only one)', async () => {
    expect((await referrers('?artifactType=application/none')).headers.filters?.split(',').map((name) => name.trim())).toEqual(['artifactType']);
  });

  it('[D-34] (clients fall back to the referrers tag on 404) the API answers, so no fallback tag is needed or made', async () => {
    expect((await referrers('', 'team/signed', sha256(Buffer.from('anything')))).status).toBe(200);
    expect((await call(`${base}/v2/team/signed/manifests/sha256-${subject.manifest.digest.slice(7)}`)).status).toBe(404);
  });

  it('[D-35] every manifest pushed with a valid subject is listed, also one pushed before its subject', async () => {
    const later = makeImage({ layers: [15], seed: 'd35-subject' });
    const early = makeImage({ layers: [16], seed: 'd35', subject: later.manifest, artifactType: 'application/vnd.example.early' });
    await pushImageTo(base, 'team/d35', undefined, early);
    await pushImageTo(base, 'team/d35', 'v1', later);
    expect((await referrers('', 'team/d35', later.manifest.digest)).entries.map((entry) => entry.digest)).toEqual([early.manifest.digest]);
  });
});
