/**
 * The stand-in upstreams themselves, checked with skopeo and plain HTTP before any mirror is
 * involved: if these fail, a failing mirror test says nothing about the mirror.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreams, type Upstreams } from './support/upstreams.js';
import { findImage } from './support/catalog.js';
import { Skopeo, readOciIndex, verifiedLayoutBlobs } from './support/skopeo.js';
import { HUB_PASSWORD, HUB_USER } from './support/token-server.js';
import { blobsOf } from './support/images.js';

const hubCreds = ['--creds', `${HUB_USER}:${HUB_PASSWORD}`];
let root: string;
let upstreams: Upstreams;
let skopeo: Skopeo;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'registry-mirror-interop-'));
  upstreams = await startUpstreams(join(root, 'upstreams'));
  skopeo = await Skopeo.create(join(root, 'skopeo'));
});

afterAll(async () => {
  await upstreams?.stop();
  if (root && !process.env.INTEROP_KEEP) rmSync(root, { recursive: true, force: true });
});

const hubHost = () => upstreams.hub.proxy.url.slice('http://'.length);
const gcrHost = () => upstreams.gcr.proxy.url.slice('http://'.length);

describe('stand-in upstreams', () => {
  it('serve every seeded tag with the digest computed at build time', async () => {
    for (const entry of upstreams.catalog) {
      const host = entry.upstream === 'hub' ? hubHost() : gcrHost();
      const creds = entry.upstream === 'hub' ? hubCreds : [];
      expect(await skopeo.rawManifestDigest(`${host}/${entry.repo}:${entry.tag}`, creds), `${entry.repo}:${entry.tag}`).toBe(entry.image.digest);
    }
  });

  it('hub hands anonymous callers pull tokens, and redirects blob GETs to the CDN', async () => {
    const nginx = findImage(upstreams.catalog, 'library/nginx', '1.27');
    const cdnMark = upstreams.cdn.requests.mark();
    const layout = join(root, 'oci', 'nginx');
    await skopeo.copyToOci(hubHost(), 'library/nginx', '1.27', layout);
    expect(readOciIndex(layout)).toHaveLength(1);
    const cdnGets = upstreams.cdn.requests.since(cdnMark).filter((r) => r.method === 'GET' && r.status === 200);
    expect(new Set(cdnGets.map((r) => r.path.split('/')[7]))).toEqual(new Set(blobsOf(nginx.image).map((b) => b.digest.slice(7))));
  });

  it('skopeo keeps an OCI index with attestations byte for byte, so the layout index names its digest', async () => {
    const redis = findImage(upstreams.catalog, 'library/redis', '7.2');
    const layout = join(root, 'oci', 'redis');
    await skopeo.copyToOci(hubHost(), 'library/redis', '7.2', layout);
    expect(readOciIndex(layout).map((entry) => entry.digest)).toEqual([redis.image.digest]);
    const blobs = verifiedLayoutBlobs(layout);
    for (const blob of blobsOf(redis.image)) expect(blobs.has(blob.digest), blob.digest).toBe(true);
  });

  it('hub keeps testuser/ private: anonymous pulls are refused, credentials work', async () => {
    const privateImage = findImage(upstreams.catalog, 'testuser/private', 'v1');
    await expect(skopeo.rawManifestDigest(`${hubHost()}/testuser/private:v1`)).rejects.toThrow(/unauthorized|authentication required|401/i);
    expect(await skopeo.rawManifestDigest(`${hubHost()}/testuser/private:v1`, hubCreds)).toBe(privateImage.image.digest);
  });

  it('gcr serves blobs itself, without auth or redirects', async () => {
    const pause = findImage(upstreams.catalog, 'google-containers/pause', '3.9');
    const mark = upstreams.gcr.proxy.requests.mark();
    await skopeo.copyToOci(gcrHost(), 'google-containers/pause', '3.9', join(root, 'oci', 'pause'));
    const blobGets = upstreams.gcr.proxy.requests.since(mark).filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
    expect(blobGets.map((r) => r.status)).toEqual(blobsOf(pause.image).map(() => 200));
    expect(upstreams.gcr.proxy.requests.since(mark).every((r) => r.authorization === 'none')).toBe(true);
  });
});
