/**
 * Access rules (`auth.access`) grant pulls per repository, but the cache holds each digest once,
 * whatever repository it came through: a hosted push, or a fill through a proxied repository.
 * So a user who may pull `docker.io/library/**` must not read, as `library/alpine@<digest>`,
 * what was pushed to a hosted repository or fetched through a proxied one they may not pull
 * (found in stop 31: bob, refused `team/secret` with 403, got its blob with 200 under
 * `library/alpine`). A digest linked only to repositories the user may not pull is served
 * under a proxied name once that name's upstream confirms the repository serves it, as an
 * upstream fill through it would.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { importOciArchive } from '../../src/airgap/import-archive.js';
import { parseDigest } from '../../src/domain/digest.js';
import { blobsOf, indexJsonOf, writeLayoutArchive } from '../airgap/crafted-archives.js';
import { holdFirstCall } from '../helpers/hold-first-call.js';
import { basicAuth, sha256, waitFor, type TestResponse } from '../helpers/http.js';
import { makeImage, pushImage, seededBytes } from '../helpers/test-images.js';
import { call, errorCodes, pushBlob, pushImageTo, putManifest, startHosted, type HostedSetup } from '../hosted/hosted-fixture.js';

const USERS = { alice: 'alice-pw', bob: 'bob-pw', carol: 'carol-pw', dave: 'dave-pw' };
const ACCESS = [
  { users: ['alice'], repositories: ['team/**'], actions: ['pull', 'push', 'delete'] },
  { users: ['bob'], repositories: ['docker.io/library/**', 'team/public'], actions: ['pull'] },
  { users: ['carol'], repositories: ['team/**', 'docker.io/**'], actions: ['pull'] },
  { users: ['dave'], repositories: ['docker.io/acme/**'], actions: ['pull'] },
];
const as = (user: keyof typeof USERS) => ({ authorization: basicAuth(user, USERS[user]) });

/** A 404 with `code`, whose body does not carry the content refused. */
function expectUnknown(response: TestResponse, code: string, secretBytes?: Buffer): void {
  expect(response.status).toBe(404);
  expect(errorCodes(response)).toEqual([code]);
  if (secretBytes) expect(response.body.includes(secretBytes)).toBe(false);
}

describe('content by digest under a proxied name, with access rules', () => {
  let bed: HostedSetup;
  const secret = seededBytes(4000, 'hosted secret layer');
  const secretDigest = sha256(secret);
  const secretImage = makeImage({ layers: [3000], seed: 'hosted secret image' });
  const acme = makeImage({ layers: [6000, 7000], seed: 'acme private' });
  const acmeLater = seededBytes(200_000, 'acme layer pulled while bob asks');
  const [acmeOnly, shared] = acme.layers as [typeof acme.layers[0], typeof acme.layers[0]];
  const alpine = makeImage({ layers: [5000], seed: 'alpine' });

  beforeAll(async () => {
    bed = await startHosted({ users: USERS, config: { hosted: { repositories: ['team/**'], allowAnonymousPush: false }, auth: { access: ACCESS } } });
    pushImage(bed.upstream, 'acme/private', 'v1', acme);
    bed.upstream.addBlob(acmeLater, 'acme/private');
    pushImage(bed.upstream, 'library/alpine', 'latest', alpine);
    // A layer both repositories serve upstream (a common base layer).
    bed.upstream.addBlob(shared.bytes, 'library/alpine');
    await pushBlob(bed.url(''), 'team/secret', secret, as('alice'));
    await pushImageTo(bed.url(''), 'team/secret', 'v1', secretImage, as('alice'));
    for (const blob of [acme.config, ...acme.layers]) expect((await call(bed.url(`/v2/acme/private/blobs/${blob.digest}`), { headers: as('dave') })).status).toBe(200);
  });
  afterAll(async () => bed?.close());
  beforeEach(() => {
    for (const target of ['all', 'blob', 'manifest'] as const) bed.upstream.setFault(target, null);
  });

  it('a blob pushed to a hosted repository the user may not pull: 404 under every spelling of a proxied name, and HEAD too', async () => {
    expect((await call(bed.url(`/v2/team/secret/blobs/${secretDigest}`), { headers: as('bob') })).status).toBe(403);
    for (const path of [`/v2/library/alpine/blobs/${secretDigest}`, `/v2/docker.io/library/alpine/blobs/${secretDigest}`, `/v2/library/alpine/blobs/${secretDigest}?ns=docker.io`]) {
      expectUnknown(await call(bed.url(path), { headers: as('bob') }), 'BLOB_UNKNOWN', secret);
      expect((await call(bed.url(path), { method: 'HEAD', headers: as('bob') })).status, `HEAD ${path}`).toBe(404);
    }
  });

  it('a manifest pushed to a hosted repository the user may not pull: 404 by digest under a proxied name', async () => {
    expectUnknown(await call(bed.url(`/v2/library/alpine/manifests/${secretImage.manifest.digest}`), { headers: { ...as('bob'), accept: secretImage.manifest.mediaType } }), 'MANIFEST_UNKNOWN', secretImage.manifest.bytes);
    expect((await call(bed.url(`/v2/library/alpine/manifests/${secretImage.manifest.digest}`), { method: 'HEAD', headers: { ...as('bob'), accept: secretImage.manifest.mediaType } })).status).toBe(404);
  });

  it('a layer cached through a proxied repository the user may not pull, which the requested one does not serve: 404 after asking its upstream', async () => {
    bed.upstream.resetCounts();
    expectUnknown(await call(bed.url(`/v2/library/alpine/blobs/${acmeOnly.digest}`), { headers: as('bob') }), 'BLOB_UNKNOWN', acmeOnly.bytes);
    expect(bed.upstream.count({ pathIncludes: `/v2/library/alpine/blobs/${acmeOnly.digest}` })).toBeGreaterThanOrEqual(1);
    expect(bed.upstream.count({ method: 'GET', pathIncludes: acmeOnly.digest }), 'no upstream GET of the bytes').toBe(0);
  });

  it('a fill through a repository the user may not pull, joined under another name: 404, and the fill still completes for its own client', async () => {
    const digest = sha256(acmeLater);
    bed.upstream.setFault('blob', { mode: 'slow', bytesPerSecond: 400_000 });
    const daves = call(bed.url(`/v2/acme/private/blobs/${digest}`), { headers: as('dave') });
    await waitFor(() => bed.upstream.count({ method: 'GET', pathIncludes: `/v2/acme/private/blobs/${digest}` }) === 1, 5_000, 'the fill through acme/private to start');
    bed.upstream.resetCounts();
    expectUnknown(await call(bed.url(`/v2/library/alpine/blobs/${digest}`), { headers: as('bob') }), 'BLOB_UNKNOWN', acmeLater.subarray(0, 1000));
    const byHead = await call(bed.url(`/v2/library/alpine/blobs/${digest}`), { method: 'HEAD', headers: as('bob') });
    expect([byHead.status, byHead.headers['content-length']], 'HEAD tells neither that it exists nor its size').toEqual([404, undefined]);
    expect(bed.upstream.count({ method: 'HEAD', pathIncludes: `/v2/library/alpine/blobs/${digest}` })).toBeGreaterThanOrEqual(1);
    expect(bed.upstream.count({ method: 'GET' }), 'bob joined the running fill: no second GET').toBe(0);
    const inFlight = async (user: keyof typeof USERS) => (JSON.parse((await call(bed.url('/api/status'), { headers: as(user) })).body.toString()) as { downloads: { inFlight: Array<{ digest: string }> } }).downloads.inFlight.map((entry) => entry.digest);
    expect(await inFlight('dave'), 'the status page shows the download to a user who may pull its repository').toContain(digest);
    expect(await inFlight('bob'), 'and not to one who may not').not.toContain(digest);
    const dave = await daves;
    expect(dave.status).toBe(200);
    expect(dave.body.equals(acmeLater)).toBe(true);
  });

  it('the status page lists among the top repositories only those the user may pull', async () => {
    const top = async (user: keyof typeof USERS) => (JSON.parse((await call(bed.url('/api/status'), { headers: as(user) })).body.toString()) as { topRepositories: Array<{ repository: string }> }).topRepositories.map((entry) => entry.repository);
    await waitFor(async () => (await top('carol')).includes('docker.io/acme/private'), 5_000, 'acme/private among the top repositories');
    expect(await top('dave')).toContain('docker.io/acme/private');
    expect(await top('bob')).not.toContain('docker.io/acme/private');
  });

  it('a layer the requested repository serves upstream too: served from the cache after one upstream HEAD, then with no upstream request', async () => {
    bed.upstream.resetCounts();
    const first = await call(bed.url(`/v2/library/alpine/blobs/${shared.digest}`), { headers: as('bob') });
    expect(first.status).toBe(200);
    expect(sha256(first.body)).toBe(shared.digest);
    expect(bed.upstream.count({ method: 'HEAD', pathIncludes: `/v2/library/alpine/blobs/${shared.digest}` })).toBe(1);
    expect(bed.upstream.count({ method: 'GET', pathIncludes: shared.digest })).toBe(0);
    bed.upstream.resetCounts();
    const again = await call(bed.url(`/v2/library/alpine/blobs/${shared.digest}`), { headers: as('bob') });
    expect(again.status).toBe(200);
    expect(sha256(again.body)).toBe(shared.digest);
    expect(bed.upstream.count()).toBe(0);
  });

  it('a blob deleted from the only hosted repository that held it is not served under a proxied name (it waits for garbage collection)', async () => {
    const deleted = seededBytes(2500, 'deleted hosted layer');
    const digest = await pushBlob(bed.url(''), 'team/secret', deleted, as('alice'));
    expect((await call(bed.url(`/v2/team/secret/blobs/${digest}`), { method: 'DELETE', headers: as('alice') })).status).toBe(202);
    for (const user of ['bob', 'carol'] as const) expectUnknown(await call(bed.url(`/v2/library/alpine/blobs/${digest}`), { headers: as(user) }), 'BLOB_UNKNOWN', deleted);
  });

  /**
   * A push publishes the verified bytes, then indexes them (retained) and links its repository.
   * Held by `blobs.put` of the pushed digest, the push stays inside that moment, in which the
   * content is held but recorded nowhere.
   */
  async function duringPush<T>(digest: string, push: () => Promise<unknown>, ask: () => Promise<T>): Promise<T> {
    const held = holdFirstCall(bed.mirror.mirror.metadata.blobs, 'put', (indexed) => indexed === digest);
    const pushed = push();
    try {
      await held.reached;
      return await ask();
    } finally {
      held.release();
      held.restore();
      await pushed;
    }
  }

  it('a blob a push has stored but not yet recorded (no index record, no link): 404 under a proxied name after asking its upstream', async () => {
    const pushed = seededBytes(3500, 'blob in the middle of its push');
    const digest = sha256(pushed);
    bed.upstream.resetCounts();
    const [got, head] = await duringPush(digest, () => pushBlob(bed.url(''), 'team/secret', pushed, as('alice')), async () => [
      await call(bed.url(`/v2/library/alpine/blobs/${digest}`), { headers: as('bob') }),
      await call(bed.url(`/v2/library/alpine/blobs/${digest}`), { method: 'HEAD', headers: as('bob') }),
    ]);
    expectUnknown(got!, 'BLOB_UNKNOWN', pushed);
    expect([head!.status, head!.headers['content-length']], 'HEAD tells neither that it exists nor its size').toEqual([404, undefined]);
    expect(bed.upstream.count({ method: 'HEAD', pathIncludes: `/v2/library/alpine/blobs/${digest}` })).toBeGreaterThanOrEqual(1);
    expect(bed.upstream.count({ method: 'GET', pathIncludes: digest }), 'nothing fetched').toBe(0);
  });

  it('a manifest a push has stored but not yet recorded as hosted: 404 by digest under a proxied name', async () => {
    const image = makeImage({ layers: [1200], seed: 'manifest in the middle of its push' });
    for (const blob of [image.config, ...image.layers]) await pushBlob(bed.url(''), 'team/secret', blob.bytes, as('alice'));
    const response = await duringPush(image.manifest.digest, () => putManifest(bed.url(''), 'team/secret', 'mid-push', image.manifest, as('alice')), () =>
      call(bed.url(`/v2/library/alpine/manifests/${image.manifest.digest}`), { headers: { ...as('bob'), accept: image.manifest.mediaType } }));
    expectUnknown(response, 'MANIFEST_UNKNOWN', image.manifest.bytes);
  });

  it('content held and indexed with no record of where from (as `import` leaves an image its archive names by digest only): served under a proxied name, with no upstream request', async () => {
    const imported = seededBytes(2800, 'imported layer');
    const digest = parseDigest(sha256(imported));
    const { content, metadata } = bed.mirror.mirror;
    const writer = await content.writer({ sizeHint: imported.byteLength });
    await writer.write(imported);
    await writer.commit(digest, imported.byteLength);
    await metadata.blobs.put(digest.value, imported.byteLength, { usedAt: Date.now() });
    bed.upstream.resetCounts();
    const response = await call(bed.url(`/v2/library/alpine/blobs/${digest.value}`), { headers: as('bob') });
    expect(response.status).toBe(200);
    expect(response.body.equals(imported)).toBe(true);
    expect(bed.upstream.count()).toBe(0);
  });

  it('content imported under a repository name (`import` of an archive naming docker.io/acme/imported:1): linked to it, so 404 under a name the user may pull after asking its upstream; served to a user who may pull it', async () => {
    const image = makeImage({ layers: [2200], seed: 'imported private image' });
    const layer = image.layers[0]!;
    const dir = await mkdtemp(path.join(tmpdir(), 'mirror-rules-import-'));
    try {
      const archive = path.join(dir, 'private.tar');
      await writeLayoutArchive(archive, indexJsonOf([{ image, refName: 'docker.io/acme/imported:1' }]), blobsOf([image]));
      const result = await importOciArchive(createReadStream(archive), bed.mirror.mirror);
      expect([result.failedCount, result.tagsRestored]).toEqual([0, 1]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    bed.upstream.resetCounts();
    expectUnknown(await call(bed.url(`/v2/library/alpine/blobs/${layer.digest}`), { headers: as('bob') }), 'BLOB_UNKNOWN', layer.bytes);
    expectUnknown(await call(bed.url(`/v2/library/alpine/manifests/${image.manifest.digest}`), { headers: { ...as('bob'), accept: image.manifest.mediaType } }), 'MANIFEST_UNKNOWN', image.manifest.bytes);
    expect(bed.upstream.count({ method: 'HEAD', pathIncludes: `/v2/library/alpine/blobs/${layer.digest}` })).toBeGreaterThanOrEqual(1);
    expect(bed.upstream.count({ method: 'GET' }), 'nothing fetched').toBe(0);
    bed.upstream.resetCounts();
    const daves = await call(bed.url(`/v2/acme/imported/blobs/${layer.digest}`), { headers: as('dave') });
    expect(daves.status).toBe(200);
    expect(daves.body.equals(layer.bytes)).toBe(true);
    const byTag = await call(bed.url('/v2/acme/imported/manifests/1'), { headers: { ...as('dave'), accept: image.manifest.mediaType } });
    expect([byTag.status, byTag.headers['docker-content-digest']]).toEqual([200, image.manifest.digest]);
    expect(bed.upstream.count()).toBe(0);
  });

  it('a user who may pull a repository the digest is linked to reads it under any proxied name they may pull, with no upstream request', async () => {
    bed.upstream.resetCounts();
    const hostedSecret = await call(bed.url(`/v2/library/alpine/blobs/${secretDigest}`), { headers: as('carol') });
    expect(hostedSecret.status).toBe(200);
    expect(hostedSecret.body.equals(secret)).toBe(true);
    const acmeLayer = await call(bed.url(`/v2/library/alpine/blobs/${acmeOnly.digest}`), { headers: as('carol') });
    expect(acmeLayer.status).toBe(200);
    expect(sha256(acmeLayer.body)).toBe(acmeOnly.digest);
    expect(bed.upstream.count()).toBe(0);
  });

  it('the upstream down: a digest it cannot confirm is not served, what the repository itself cached still is', async () => {
    const layer = alpine.layers[0]!;
    expect((await call(bed.url(`/v2/library/alpine/blobs/${layer.digest}`), { headers: as('bob') })).status).toBe(200);
    bed.upstream.setFault('all', { status: 503 });
    const refused = await call(bed.url(`/v2/library/alpine/blobs/${secretDigest}`), { headers: as('bob') });
    expect(refused.status).toBeGreaterThanOrEqual(500);
    expect(refused.body.includes(secret)).toBe(false);
    const cached = await call(bed.url(`/v2/library/alpine/blobs/${layer.digest}`), { headers: as('bob') });
    expect(cached.status).toBe(200);
    expect(sha256(cached.body)).toBe(layer.digest);
  });
});

describe('content by digest under a proxied name, with access rules, offline', () => {
  let bed: HostedSetup;
  afterAll(async () => bed?.close());

  it('a hosted blob the user may not pull is 404 under a proxied name, and no upstream is asked', async () => {
    bed = await startHosted({ users: USERS, config: { offline: true, hosted: { repositories: ['team/**'], allowAnonymousPush: false }, auth: { access: ACCESS } } });
    const secret = seededBytes(3000, 'offline secret');
    const digest = await pushBlob(bed.url(''), 'team/secret', secret, as('alice'));
    const response = await call(bed.url(`/v2/library/alpine/blobs/${digest}`), { headers: as('bob') });
    expect(response.status).toBe(404);
    expect(errorCodes(response)).toEqual(['BLOB_UNKNOWN']);
    expect(response.body.includes(secret)).toBe(false);
    const carols = await call(bed.url(`/v2/library/alpine/blobs/${digest}`), { headers: as('carol') });
    expect(carols.status).toBe(200);
    expect(carols.body.equals(secret)).toBe(true);
    expect(bed.upstream.count()).toBe(0);
  });
});

describe('content by digest under a proxied name, with access rules, after garbage collection', () => {
  let gcBed: HostedSetup;
  beforeAll(async () => {
    gcBed = await startHosted({ users: USERS, config: { hosted: { repositories: ['team/**'], allowAnonymousPush: false, gc: { graceSeconds: 0 } }, auth: { access: ACCESS } } });
  });
  afterAll(async () => gcBed?.close());

  it('a hosted manifest deleted and garbage-collected is not served under a proxied name from the memory of manifests', async () => {
    const image = makeImage({ layers: [1500], seed: 'collected secret image' });
    await pushImageTo(gcBed.url(''), 'team/collected', 'v1', image, as('alice'));
    const path = `/v2/library/alpine/manifests/${image.manifest.digest}`;
    const accept = { accept: image.manifest.mediaType };
    expectUnknown(await call(gcBed.url(path), { headers: { ...as('bob'), ...accept } }), 'MANIFEST_UNKNOWN', image.manifest.bytes);
    expect((await call(gcBed.url(`/v2/team/collected/manifests/${image.manifest.digest}`), { method: 'DELETE', headers: as('alice') })).status).toBe(202);
    const report = await gcBed.mirror.mirror.hosted.collect();
    expect(report.blobsDeleted).toBeGreaterThan(0);
    for (const user of ['bob', 'carol'] as const) expectUnknown(await call(gcBed.url(path), { headers: { ...as(user), ...accept } }), 'MANIFEST_UNKNOWN', image.manifest.bytes);
  });

  it('the same when another process collected it (a worker, `registry-mirror gc`): this one still remembers the manifest', async () => {
    const image = makeImage({ layers: [1600], seed: 'collected elsewhere' });
    await pushImageTo(gcBed.url(''), 'team/elsewhere', 'v1', image, as('alice'));
    const path = `/v2/library/alpine/manifests/${image.manifest.digest}`;
    const accept = { accept: image.manifest.mediaType };
    expect((await call(gcBed.url(`/v2/team/elsewhere/manifests/${image.manifest.digest}`), { method: 'DELETE', headers: as('alice') })).status).toBe(202);
    // What another process's sweep removes (garbage-collect.ts sweepOne), leaving this process's memory of manifests alone.
    const { metadata, content } = gcBed.mirror.mirror;
    await metadata.manifests.delete(image.manifest.digest);
    await metadata.blobs.delete(image.manifest.digest);
    await content.delete(parseDigest(image.manifest.digest));
    for (const user of ['bob', 'carol'] as const) expectUnknown(await call(gcBed.url(path), { headers: { ...as(user), ...accept } }), 'MANIFEST_UNKNOWN', image.manifest.bytes);
  });
});
