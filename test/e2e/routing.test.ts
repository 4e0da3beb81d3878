/**
 * Routing (issue 2): the registry a request is for is named by `?ns=` (containerd hosts.toml), by
 * a host path prefix (podman registries.conf), or not at all (dockerd: the default upstream).
 * Two fakes stand in for docker.io and gcr.io; each must see only its own requests.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FakeRegistry } from '../helpers/fake-registry.js';
import { get, head, sha256 } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { type E2eSetup, startE2e } from './e2e-fixture.js';

let e2e: E2eSetup;
let hub: FakeRegistry;
let gcr: FakeRegistry;
const hubImage = makeImage({ layers: [3000], seed: 'routing-hub' });
const gcrImage = makeImage({ layers: [4000], seed: 'routing-gcr' });

// A fresh mirror per test: what one test cached must not hide another's upstream requests.
beforeEach(async () => {
  e2e = await startE2e({ upstreams: ['docker.io', 'gcr.io'] });
  hub = e2e.fakes['docker.io']!;
  gcr = e2e.fakes['gcr.io']!;
  pushImage(hub, 'library/app', 'v1', hubImage);
  pushImage(gcr, 'distroless/static', 'v1', gcrImage);
  pushImage(gcr, 'app', 'v1', gcrImage);
});

afterEach(async () => {
  await e2e?.close();
});

async function expectImage(path: (tail: string) => string, image = gcrImage): Promise<void> {
  const manifest = await get(e2e.url(path('manifests/v1')));
  expect(manifest.status).toBe(200);
  expect(manifest.body.equals(image.manifest.bytes)).toBe(true);
  const layer = image.layers[0]!;
  const blob = await get(e2e.url(path(`blobs/${layer.digest}`)));
  expect(blob.status).toBe(200);
  expect(sha256(blob.body)).toBe(layer.digest);
}

describe('?ns= (containerd)', () => {
  it('?ns=gcr.io reaches the gcr.io upstream and only it', async () => {
    await expectImage((tail) => `/v2/distroless/static/${tail}?ns=gcr.io`);
    expect(gcr.count({ server: 'registry', method: 'GET', status: 200, pathIncludes: '/v2/distroless/static/manifests/v1' })).toBe(1);
    expect(hub.requests.length).toBe(0);
  });

  it('a one-component name keeps its name on gcr.io (the library/ rule is Docker Hub only)', async () => {
    await expectImage((tail) => `/v2/app/${tail}?ns=gcr.io`);
    expect(gcr.count({ server: 'registry', status: 200, pathIncludes: '/v2/app/manifests/v1' })).toBe(1);
    expect(gcr.count({ pathIncludes: 'library/' })).toBe(0);
    expect(hub.requests.length).toBe(0);
  });

  it('?ns=docker.io and its aliases reach Docker Hub with the library/ rule', async () => {
    for (const ns of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'DOCKER.IO']) {
      hub.resetCounts();
      const response = await get(e2e.url(`/v2/app/manifests/v1?ns=${ns}`));
      expect(response.status, ns).toBe(200);
      expect(response.body.equals(hubImage.manifest.bytes), ns).toBe(true);
    }
    expect(gcr.requests.length).toBe(0);
  });
});

describe('path prefix (podman, CRI-O)', () => {
  it('/v2/gcr.io/<name>/... reaches gcr.io as <name>', async () => {
    await expectImage((tail) => `/v2/gcr.io/distroless/static/${tail}`);
    expect(gcr.count({ server: 'registry', method: 'GET', status: 200, pathIncludes: '/v2/distroless/static/manifests/v1' })).toBe(1);
    expect(gcr.count({ pathIncludes: 'gcr.io' })).toBe(0);
    expect(hub.requests.length).toBe(0);
  });

  it('HEAD and tags/list route the same way', async () => {
    const manifest = await head(e2e.url('/v2/gcr.io/distroless/static/manifests/v1'));
    expect(manifest.status).toBe(200);
    expect(manifest.headers['docker-content-digest']).toBe(gcrImage.manifest.digest);
    const tags = await get(e2e.url('/v2/gcr.io/distroless/static/tags/list'));
    expect(tags.status).toBe(200);
    expect(JSON.parse(tags.body.toString())).toEqual({ name: 'distroless/static', tags: ['v1'] });
    expect(hub.requests.length).toBe(0);
  });
});

describe('no registry named (dockerd)', () => {
  it('goes to the default upstream', async () => {
    await expectImage((tail) => `/v2/library/app/${tail}`, hubImage);
    expect(hub.count({ server: 'registry', method: 'GET', status: 200, pathIncludes: '/v2/library/app/manifests/v1' })).toBe(1);
    expect(gcr.requests.length).toBe(0);
  });

  it('caches per upstream: the same name on two registries are two repositories', async () => {
    pushImage(hub, 'library/same', 'v1', hubImage);
    pushImage(gcr, 'library/same', 'v1', gcrImage);
    const fromHub = await get(e2e.url('/v2/library/same/manifests/v1'));
    const fromGcr = await get(e2e.url('/v2/library/same/manifests/v1?ns=gcr.io'));
    expect(fromHub.body.equals(hubImage.manifest.bytes)).toBe(true);
    expect(fromGcr.body.equals(gcrImage.manifest.bytes)).toBe(true);
  });
});
