/**
 * accel.redirectPrefix with a real nginx in front, configured by deploy/nginx/registry-mirror.conf
 * (ports and paths templated by support/nginx-front.ts): skopeo pulls through nginx, cold (the
 * mirror streams misses through the proxy) and warm (nginx sends the cached files after the
 * mirror's X-Accel-Redirect), with the seeded digests; Range and the registry headers survive
 * the redirect. Skipped when nginx is not installed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreams, type Upstreams } from './support/upstreams.js';
import { startMirror, type RunningMirror } from './support/mirror.js';
import { ACCEL_PREFIX, startNginxFront, type NginxFront } from './support/nginx-front.js';
import { findImage, type CatalogImage } from './support/catalog.js';
import { Skopeo, verifiedLayoutBlobs } from './support/skopeo.js';
import { MEDIA, blobsOf, type Blob } from './support/images.js';
import { sha256Digest } from './support/layers.js';

const HAS_NGINX = (() => {
  try {
    execFileSync('nginx', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const IMAGES = [['library/alpine', '3.20'], ['library/nginx', '1.27'], ['myorg/app', 'v1']] as const;

let root: string;
let upstreams: Upstreams | undefined;
let mirror: RunningMirror | undefined;
let nginx: NginxFront | undefined;
let skopeo: Skopeo;

beforeAll(async () => {
  if (!HAS_NGINX) return;
  root = mkdtempSync(join(tmpdir(), 'registry-mirror-nginx-'));
  upstreams = await startUpstreams(join(root, 'upstreams'));
  mirror = await startMirror(join(root, 'mirror'), upstreams, { accel: { redirectPrefix: ACCEL_PREFIX } });
  nginx = await startNginxFront(join(root, 'nginx'), { mirrorUrl: mirror.url, cacheDir: mirror.cacheDir, accessLog: true });
  skopeo = await Skopeo.create(join(root, 'skopeo'));
});

afterAll(async () => {
  await nginx?.stop();
  await mirror?.stop();
  await upstreams?.stop();
  if (root && !process.env.INTEROP_KEEP) rmSync(root, { recursive: true, force: true });
});

function env(): { upstreams: Upstreams; mirror: RunningMirror; nginx: NginxFront; host: string } {
  if (!upstreams || !mirror || !nginx) throw new Error('interop environment did not start');
  return { upstreams, mirror, nginx, host: nginx.url.replace(/^http:\/\//, '') };
}

const images = (): CatalogImage[] => IMAGES.map(([repo, tag]) => findImage(env().upstreams.catalog, repo, tag));

/** Every OCI/Docker layer of the images (not configs), largest first. */
function layers(): Array<{ repo: string; blob: Blob }> {
  const found = images().flatMap((entry) => blobsOf(entry.image).filter((blob) => blob.size > 1024).map((blob) => ({ repo: entry.repo, blob })));
  return found.sort((a, b) => b.blob.size - a.blob.size);
}

/** Access-log lines nginx wrote for blob GETs answered from a file after the mirror's redirect. */
function accelLines(): string[] {
  return readFileSync(env().nginx.accessLogFile, 'utf8').split('\n').filter((line) => line.includes(`accel=${ACCEL_PREFIX}`));
}

async function copyAll(pass: string): Promise<void> {
  for (const entry of images()) {
    const layout = join(root, pass, entry.repo);
    await skopeo.copyToOci(env().host, entry.repo, entry.tag, layout);
    expect(await skopeo.rawManifestDigest(`${env().host}/${entry.repo}:${entry.tag}`), entry.repo).toBe(entry.image.digest);
    const wanted = entry.image.mediaType === MEDIA.ociManifest || entry.image.mediaType === MEDIA.ociIndex
      ? blobsOf(entry.image).map((blob) => blob.digest)
      : [];
    const present = verifiedLayoutBlobs(layout);
    expect(wanted.filter((digest) => !present.has(digest)), `${entry.repo}: blobs missing`).toEqual([]);
  }
}

describe.skipIf(!HAS_NGINX)('the mirror behind nginx (deploy/nginx/registry-mirror.conf)', () => {
  it('skopeo copy --all through nginx, cold: misses stream through the proxy with the seeded digests', async () => {
    await copyAll('cold');
  });

  it('skopeo copy --all through nginx, warm: nginx sends the cached blobs, nothing goes upstream', async () => {
    const { hub, cdn } = env().upstreams;
    const marks = { hub: hub.proxy.requests.mark(), cdn: cdn.requests.mark(), accel: accelLines().length };
    await copyAll('warm');
    expect(cdn.requests.linesSince(marks.cdn), 'requests at the CDN').toEqual([]);
    expect(hub.proxy.requests.linesSince(marks.hub).filter((line) => line.includes('/blobs/')), 'blob requests at hub').toEqual([]);
    expect(accelLines().length - marks.accel, 'blob GETs nginx served from the cache dir').toBeGreaterThan(0);
  });

  it('a cached blob through nginx carries the registry headers and the exact bytes, no X-Accel-Redirect', async () => {
    const { repo, blob } = layers()[0]!;
    const before = accelLines().length;
    const response = await fetch(`${env().nginx.url}/v2/${repo}/blobs/${blob.digest}`, { signal: AbortSignal.timeout(30_000) });
    const body = Buffer.from(await response.arrayBuffer());
    expect(response.status).toBe(200);
    expect(sha256Digest(body)).toBe(blob.digest);
    expect(response.headers.get('docker-content-digest')).toBe(blob.digest);
    expect(response.headers.get('content-length')).toBe(String(blob.size));
    expect(response.headers.get('content-type')).toBe('application/octet-stream');
    expect(response.headers.get('etag')).toBe(`"${blob.digest}"`);
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(response.headers.get('x-accel-redirect')).toBeNull();
    expect(accelLines().length, 'served by nginx from the file').toBe(before + 1);
  });

  it('a Range request through nginx answers 206 with exactly those bytes and the digest header', async () => {
    const { repo, blob } = layers()[0]!;
    const start = 1000;
    const end = Math.min(blob.size - 1, 5000);
    const response = await fetch(`${env().nginx.url}/v2/${repo}/blobs/${blob.digest}`, { headers: { range: `bytes=${start}-${end}` }, signal: AbortSignal.timeout(30_000) });
    const body = Buffer.from(await response.arrayBuffer());
    expect(response.status).toBe(206);
    expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end}/${blob.size}`);
    expect(response.headers.get('content-length')).toBe(String(end - start + 1));
    expect(response.headers.get('docker-content-digest')).toBe(blob.digest);
    expect(body.equals(blob.bytes.subarray(start, end + 1))).toBe(true);
  });

  it('HEAD through nginx is the mirror\'s own answer, with the size and digest', async () => {
    const { repo, blob } = layers()[0]!;
    const response = await fetch(`${env().nginx.url}/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD', signal: AbortSignal.timeout(30_000) });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(blob.size));
    expect(response.headers.get('docker-content-digest')).toBe(blob.digest);
  });

  it('the internal location cannot be requested by a client', async () => {
    const hex = layers()[0]!.blob.digest.slice('sha256:'.length);
    const response = await fetch(`${env().nginx.url}${ACCEL_PREFIX}sha256/${hex.slice(0, 2)}/${hex}`, { signal: AbortSignal.timeout(30_000) });
    await response.arrayBuffer();
    expect(response.status).not.toBe(200);
  });

  it('the mirror reached directly still sends the bytes itself', async () => {
    const { repo, blob } = layers()[0]!;
    const response = await fetch(`${env().mirror.url}/v2/${repo}/blobs/${blob.digest}`, { signal: AbortSignal.timeout(30_000) });
    const body = Buffer.from(await response.arrayBuffer());
    expect(response.status).toBe(200);
    expect(response.headers.get('x-accel-redirect')).toBeNull();
    expect(sha256Digest(body)).toBe(blob.digest);
  });
});
