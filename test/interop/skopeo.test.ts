/**
 * Issue 2 acceptance: real skopeo pulls through the mirror.
 *
 * Every image is copied with `--all` (all platforms, attestations included) from the mirror; the
 * manifests the mirror serves must be byte-identical to the upstream's (same digests), and a
 * second copy of everything must be answered from the cache alone: zero requests at hub, at its
 * blob CDN and at the token server. gcr.io images are addressed the two ways a mirror sees them:
 * containerd's `?ns=gcr.io` and a host-prefixed repository name.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreams, type Upstreams } from './support/upstreams.js';
import { startMirror, type RunningMirror } from './support/mirror.js';
import { findImage, type CatalogImage } from './support/catalog.js';
import { Skopeo, readOciIndex, verifiedLayoutBlobs } from './support/skopeo.js';
import { MEDIA, blobsOf } from './support/images.js';
import { sha256Digest } from './support/layers.js';

const HUB_IMAGES = [
  ['library/alpine', '3.20'],
  ['library/nginx', '1.27'],
  ['library/redis', '7.2'],
  ['library/busybox', 'latest'],
  ['myorg/app', 'v1'],
] as const;

const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest].join(', ');

let root: string;
let upstreams: Upstreams | undefined;
let mirror: RunningMirror | undefined;
let skopeo: Skopeo;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'registry-mirror-interop-'));
  upstreams = await startUpstreams(join(root, 'upstreams'));
  mirror = await startMirror(join(root, 'mirror'), upstreams);
  skopeo = await Skopeo.create(join(root, 'skopeo'));
});

afterAll(async () => {
  await mirror?.stop();
  await upstreams?.stop();
  if (root && !process.env.INTEROP_KEEP) rmSync(root, { recursive: true, force: true });
});

function env(): { upstreams: Upstreams; mirror: RunningMirror; mirrorHost: string } {
  if (!upstreams || !mirror) throw new Error('interop environment did not start');
  return { upstreams, mirror, mirrorHost: mirror.url.replace(/^http:\/\//, '').replace(/\/$/, '') };
}

const hubImages = (): CatalogImage[] => HUB_IMAGES.map(([repo, tag]) => findImage(env().upstreams.catalog, repo, tag));

/**
 * skopeo writes only OCI media types into an oci: layout. OCI manifests and indexes pass through
 * untouched, so their digests and every blob survive; Docker ones are converted (new manifest and
 * config digests), so only their layers keep their digests.
 */
const isOci = (entry: CatalogImage) => entry.image.mediaType === MEDIA.ociManifest || entry.image.mediaType === MEDIA.ociIndex;

function expectedLayoutBlobs(entry: CatalogImage): string[] {
  const manifests = entry.image.kind === 'index' ? entry.image.manifests : [entry.image];
  const blobs = isOci(entry) ? blobsOf(entry.image) : manifests.flatMap((m) => m.blobs.slice(1));
  return [...new Set(blobs.map((blob) => blob.digest))];
}

/** Copies every hub image from the mirror into `<root>/<pass>/<repo>` layouts. */
async function copyAll(pass: string): Promise<void> {
  for (const entry of hubImages()) await skopeo.copyToOci(env().mirrorHost, entry.repo, entry.tag, join(root, pass, entry.repo));
}

describe('skopeo copy --all through the mirror', () => {
  it('copies every hub image, with the upstream manifest bytes and every blob', async () => {
    await copyAll('cold');
    for (const entry of hubImages()) {
      const name = `${entry.repo}:${entry.tag}`;
      expect(await skopeo.rawManifestDigest(`${env().mirrorHost}/${name}`), name).toBe(entry.image.digest);
      for (const child of entry.image.kind === 'index' ? entry.image.manifests : []) {
        expect(await skopeo.rawManifestDigest(`${env().mirrorHost}/${entry.repo}@${child.digest}`), `${name} ${child.digest}`).toBe(child.digest);
      }
      const layout = join(root, 'cold', entry.repo);
      if (isOci(entry)) expect(readOciIndex(layout).map((m) => m.digest), name).toEqual([entry.image.digest]);
      const blobs = verifiedLayoutBlobs(layout);
      expect(expectedLayoutBlobs(entry).filter((digest) => !blobs.has(digest)), `${name}: blobs missing from the layout`).toEqual([]);
    }
  });

  it('copies them all again without a single request to hub, the CDN or the token server', async () => {
    // .ci/run installs a C compiler before this suite, so warm blobs go out by sendfile(2).
    const status = (await (await fetch(new URL('/api/status', env().mirror.url))).json()) as { blobBodies: unknown };
    expect(status.blobBodies).toEqual({ method: 'sendfile', reason: null });
    const { hub, cdn, token } = env().upstreams;
    const marks = { hub: hub.proxy.requests.mark(), cdn: cdn.requests.mark(), token: token.requests.mark() };
    await copyAll('warm');
    for (const entry of hubImages()) {
      expect(await skopeo.rawManifestDigest(`${env().mirrorHost}/${entry.repo}:${entry.tag}`)).toBe(entry.image.digest);
    }
    expect(hub.proxy.requests.linesSince(marks.hub), 'requests at hub').toEqual([]);
    expect(cdn.requests.linesSince(marks.cdn), 'requests at the CDN').toEqual([]);
    expect(token.requests.linesSince(marks.token), 'requests at the token server').toEqual([]);
  });
});

describe('gcr.io images through the mirror (plain HTTP: skopeo cannot send ?ns=)', () => {
  const paths = ['/v2/distroless/static/manifests/nonroot?ns=gcr.io', '/v2/gcr.io/distroless/static/manifests/nonroot'];

  it.each(paths)('GET %s returns the seeded manifest', async (path) => {
    const seeded = findImage(env().upstreams.catalog, 'distroless/static', 'nonroot').image;
    const hubMark = env().upstreams.hub.proxy.requests.mark();
    const response = await fetch(new URL(path, env().mirror.url), { headers: { accept: MANIFEST_ACCEPT }, signal: AbortSignal.timeout(30_000) });
    const body = Buffer.from(await response.arrayBuffer());
    expect(response.status).toBe(200);
    expect(response.headers.get('docker-content-digest')).toBe(seeded.digest);
    expect(response.headers.get('content-type')).toBe(MEDIA.ociManifest);
    expect(sha256Digest(body)).toBe(seeded.digest);
    expect(env().upstreams.hub.proxy.requests.linesSince(hubMark), 'a gcr.io request must not reach hub').toEqual([]);
  });
});
