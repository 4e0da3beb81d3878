/**
 * Issue 4 acceptance: the container clients people run pull through one mirror for docker.io and
 * gcr.io, each configured with the file shipped in deploy/clients/ (see client-configs.ts):
 *   - containerd (`ctr image pull --hosts-dir`, hosts.toml): `?ns=docker.io` / `?ns=gcr.io`,
 *     including `--platform linux/arm64` of a manifest list and the `_default` hosts.toml;
 *   - dockerd (`registry-mirrors` in daemon.json): no ns, default upstream with the library/ rule;
 *   - skopeo with podman's registries.conf: docker.io at the mirror's root, gcr.io through the
 *     `/v2/gcr.io/...` path prefix.
 * Every pulled digest is compared with the seeded one. Then all upstreams are stopped and every
 * client pulls everything again with fresh state, from the mirror's cache alone.
 *
 * Clients talk to the mirror through a counting proxy (the "tap"), so the test can see how each
 * one named the registry. Every "real registry" in the configs, and every client's HTTP(S) proxy,
 * is a tripwire port: a client falling back past the mirror fails, and the test says so.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreams, type Upstreams } from './support/upstreams.js';
import { startMirror, type RunningMirror } from './support/mirror.js';
import { findImage, type CatalogImage } from './support/catalog.js';
import { CountingProxy } from './support/counting-proxy.js';
import { Tripwire } from './support/tripwire.js';
import { Containerd } from './support/containerd.js';
import { Dockerd, DockerdUnavailableError } from './support/dockerd.js';
import { Skopeo, verifiedLayoutBlobs } from './support/skopeo.js';
import { dockerDaemonJson, podmanRegistriesConf, writeContainerdHostsDir, copyKubernetesNodeSnippet } from './support/client-configs.js';
import { MEDIA, platformContent, platformManifest } from './support/images.js';
import { sha256Digest } from './support/layers.js';
import type { LoggedRequest } from './support/request-log.js';

const HOST_ARCH = 'amd64';

let root: string;
let upstreams: Upstreams | undefined;
let mirror: RunningMirror | undefined;
let tap: CountingProxy | undefined;
let tripwire: Tripwire | undefined;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'registry-mirror-clients-'));
  tripwire = await Tripwire.start();
  upstreams = await startUpstreams(join(root, 'upstreams'));
  mirror = await startMirror(join(root, 'mirror'), upstreams);
  tap = await CountingProxy.start('tap');
  tap.target = mirror.url;
});

afterAll(async () => {
  await tap?.close();
  await mirror?.stop();
  await upstreams?.stop();
  await tripwire?.close();
  if (root && !process.env.INTEROP_KEEP) rmSync(root, { recursive: true, force: true });
});

function env() {
  if (!upstreams || !mirror || !tap || !tripwire) throw new Error('interop environment did not start');
  return { upstreams, mirror, tap, tripwire, mirrorHost: `127.0.0.1:${tap.port}` };
}

const image = (repo: string, tag: string): CatalogImage => findImage(env().upstreams.catalog, repo, tag);
const alpine = () => image('library/alpine', '3.20');
const nginx = () => image('library/nginx', '1.27');
const distroless = () => image('distroless/static', 'nonroot');
const pause = () => image('google-containers/pause', '3.9');

/** Tap requests since `mark`, as "METHOD url" with the query string, for routing assertions. */
const tapUrls = (mark: number) => env().tap.requests.since(mark).map((r: LoggedRequest) => `${r.method} ${r.url}`);

function expectNoFallback(client: string, connectionsBefore: number): void {
  expect(env().tripwire.connections - connectionsBefore, `${client} fell back past the mirror (connections to the tripwire)`).toBe(0);
}

async function containerdPulls(pass: string): Promise<void> {
  const { mirrorHost, tripwire: wire, tap: tapProxy } = env();
  const wireMark = wire.connections;
  const containerd = await Containerd.start(join(root, pass, 'containerd'), wire);
  try {
    const hostsDir = writeContainerdHostsDir(join(root, pass, 'certs.d'), mirrorHost, wire.url, ['docker.io', 'gcr.io', '_default']);
    const mark = tapProxy.requests.mark();
    const pulls = crossRegistryPulls();
    for (const [ref, entry] of pulls) {
      await containerd.pull('interop', ref, hostsDir);
      expect((await containerd.image('interop', ref)).digest, ref).toBe(entry.image.digest);
    }
    const content = await containerd.contentDigests('interop');
    for (const [ref, entry] of pulls) expect(platformContent(entry.image, HOST_ARCH).filter((d) => !content.has(d)), `${ref}: missing content`).toEqual([]);
    expect(await containerd.snapshotCount('interop'), 'unpacked layers').toBeGreaterThan(0);

    const urls = tapUrls(mark);
    expect(urls.filter((line) => !/[?&]ns=(docker\.io|gcr\.io)$/.test(line)), 'containerd requests without ?ns=').toEqual([]);
    // containerd resolves a tag with HEAD, then GETs everything by digest.
    expect(urls).toContain('HEAD /v2/library/alpine/manifests/3.20?ns=docker.io');
    expect(urls).toContain('HEAD /v2/distroless/static/manifests/nonroot?ns=gcr.io');
    expect(urls).toContain(`GET /v2/distroless/static/manifests/${distroless().image.digest}?ns=gcr.io`);
    expectNoFallback('containerd', wireMark);
  } finally {
    await containerd.stop();
  }
}

async function containerdArm64Pull(pass: string): Promise<void> {
  const { mirrorHost, tripwire: wire } = env();
  const wireMark = wire.connections;
  const containerd = await Containerd.start(join(root, pass, 'containerd-arm64'), wire);
  try {
    const hostsDir = writeContainerdHostsDir(join(root, pass, 'certs-arm64.d'), mirrorHost, wire.url, ['docker.io']);
    const ref = 'docker.io/library/nginx:1.27';
    await containerd.pull('arm64', ref, hostsDir, 'linux/arm64');
    const pulled = await containerd.image('arm64', ref);
    expect(pulled.digest).toBe(nginx().image.digest);
    expect(pulled.mediaType).toBe(MEDIA.dockerList);
    // Exactly the list, the arm64 manifest and its blobs: nothing of the amd64 image.
    expect([...(await containerd.contentDigests('arm64'))].sort()).toEqual(platformContent(nginx().image, 'arm64').sort());
    expectNoFallback('containerd (arm64)', wireMark);
  } finally {
    await containerd.stop();
  }
}

/** Only `_default/hosts.toml`: any registry goes to the mirror first, named by ?ns=. */
async function containerdDefaultHostsPull(pass: string): Promise<void> {
  const { mirrorHost, tripwire: wire, tap: tapProxy } = env();
  const wireMark = wire.connections;
  const containerd = await Containerd.start(join(root, pass, 'containerd-default'), wire);
  try {
    const hostsDir = writeContainerdHostsDir(join(root, pass, 'certs-default.d'), mirrorHost, wire.url, ['_default']);
    const mark = tapProxy.requests.mark();
    const ref = 'gcr.io/google-containers/pause:3.9';
    await containerd.pull('default-hosts', ref, hostsDir);
    expect((await containerd.image('default-hosts', ref)).digest).toBe(pause().image.digest);
    expect(tapUrls(mark)).toContain('HEAD /v2/google-containers/pause/manifests/3.9?ns=gcr.io');
    expectNoFallback('containerd (_default)', wireMark);
  } finally {
    await containerd.stop();
  }
}

/** dockerd with the shipped daemon.json; the test is skipped, saying why, if dockerd cannot run here at all. */
async function startDockerd(dir: string, skip: (note: string) => never): Promise<Dockerd> {
  const { mirrorHost, tripwire: wire } = env();
  return Dockerd.start(dir, wire, dockerDaemonJson(mirrorHost)).catch((error: unknown) => {
    if (error instanceof DockerdUnavailableError) skip(error.message);
    throw error;
  });
}

async function dockerdPulls(pass: string, skip: (note: string) => never): Promise<void> {
  const { tripwire: wire, tap: tapProxy } = env();
  const wireMark = wire.connections;
  const dockerd = await startDockerd(join(root, pass, 'dockerd'), skip);
  try {
    const mark = tapProxy.requests.mark();
    for (const [ref, entry] of [['alpine:3.20', alpine()], ['nginx:1.27', nginx()]] as const) {
      await dockerd.pull(ref);
      const name = ref.split(':')[0];
      expect(await dockerd.repoDigests(ref), ref).toEqual([`${name}@${entry.image.digest}`]);
      expect(await dockerd.imageId(ref), `${ref} image ID (config digest)`).toBe(platformManifest(entry.image, HOST_ARCH).blobs[0]?.digest);
    }
    const urls = tapUrls(mark);
    expect(urls.filter((line) => line.includes('?')), 'dockerd sends no query string').toEqual([]);
    expect(urls).toContain('HEAD /v2/library/alpine/manifests/3.20');
    expectNoFallback('dockerd', wireMark);
  } finally {
    await dockerd.stop();
  }
}

/** Docker Hub images and a gcr.io one: the mirror must route both from one client config. */
function crossRegistryPulls(): Array<[string, CatalogImage]> {
  return [
    ['docker.io/library/alpine:3.20', alpine()],
    ['docker.io/library/nginx:1.27', nginx()],
    ['gcr.io/distroless/static:nonroot', distroless()],
  ];
}

async function skopeoRegistriesConfPulls(pass: string): Promise<void> {
  const { mirrorHost, tripwire: wire, tap: tapProxy } = env();
  const dir = join(root, pass, 'skopeo');
  const wireMark = wire.connections;
  const skopeo = await Skopeo.create(dir, { registriesConf: podmanRegistriesConf(mirrorHost, wire.host), deadProxyPort: wire.port });
  const mark = tapProxy.requests.mark();
  const pulls = crossRegistryPulls();
  for (const [ref, entry] of pulls) {
    expect(sha256Digest(Buffer.from(await skopeo.run(['inspect', '--raw', `docker://${ref}`]))), ref).toBe(entry.image.digest);
    const layout = join(dir, 'oci', entry.repo);
    mkdirSync(layout, { recursive: true });
    await skopeo.run(['copy', `docker://${ref}`, `oci:${layout}:${entry.tag}`]);
    // skopeo copies the host platform; Docker manifests are converted to OCI, layers keep their digests.
    const layers = platformManifest(entry.image, HOST_ARCH).blobs.slice(1).map((blob) => blob.digest);
    const blobs = verifiedLayoutBlobs(layout);
    expect(layers.filter((digest) => !blobs.has(digest)), `${ref}: layers missing from the layout`).toEqual([]);
  }
  const urls = tapUrls(mark);
  expect(urls.filter((line) => line.includes('?')), 'podman-style clients send no query string').toEqual([]);
  expect(urls).toContain('GET /v2/library/alpine/manifests/3.20');
  expect(urls).toContain('GET /v2/gcr.io/distroless/static/manifests/nonroot');
  expectNoFallback('skopeo (registries.conf)', wireMark);
}

const PASSES = [
  { name: 'cold', title: 'clients pull through the mirror from the upstreams' },
  { name: 'cached', title: 'with every upstream stopped, clients with fresh state pull it all again from the cache' },
] as const;

for (const pass of PASSES) {
  describe(pass.title, () => {
    if (pass.name === 'cached') {
      beforeAll(async () => {
        await env().upstreams.stop();
      });
    }

    it('containerd (hosts.toml for docker.io and gcr.io) pulls alpine, nginx and distroless with ?ns=', () => containerdPulls(pass.name));
    it('containerd pulls the arm64 image of the nginx manifest list', () => containerdArm64Pull(pass.name));
    it('containerd with only _default/hosts.toml pulls a gcr.io image with ?ns=gcr.io', () => containerdDefaultHostsPull(pass.name));
    it('dockerd (registry-mirrors in daemon.json) pulls alpine:3.20 and nginx:1.27', ({ skip }) => dockerdPulls(pass.name, skip));
    it('skopeo with podman registries.conf pulls docker.io images and gcr.io through the path prefix', () => skopeoRegistriesConfPulls(pass.name));
  });
}

describe('the harness catches a client falling back past the mirror (a tag the mirror cannot serve)', () => {
  it('containerd goes on to hosts.toml `server`: the tripwire counts it', async () => {
    const { mirrorHost, tripwire: wire } = env();
    const wireMark = wire.connections;
    const containerd = await Containerd.start(join(root, 'fallback', 'containerd'), wire);
    try {
      const hostsDir = writeContainerdHostsDir(join(root, 'fallback', 'certs.d'), mirrorHost, wire.url, ['docker.io']);
      await expect(containerd.pull('fallback', 'docker.io/library/alpine:no-such-tag', hostsDir)).rejects.toThrow();
      expect(wire.connections - wireMark, 'connections to the tripwire').toBeGreaterThan(0);
    } finally {
      await containerd.stop();
    }
  });

  it('dockerd goes on to Docker Hub through its HTTPS proxy: the tripwire counts it', async ({ skip }) => {
    const { tripwire: wire } = env();
    const wireMark = wire.connections;
    const dockerd = await startDockerd(join(root, 'fallback', 'dockerd'), skip);
    try {
      await expect(dockerd.pull('alpine:no-such-tag')).rejects.toThrow();
      expect(wire.connections - wireMark, 'connections to the tripwire').toBeGreaterThan(0);
    } finally {
      await dockerd.stop();
    }
  });

  it('skopeo goes on to the registries.conf `location`: the tripwire counts it', async () => {
    const { mirrorHost, tripwire: wire } = env();
    const wireMark = wire.connections;
    const skopeo = await Skopeo.create(join(root, 'fallback', 'skopeo'), { registriesConf: podmanRegistriesConf(mirrorHost, wire.host), deadProxyPort: wire.port });
    await expect(skopeo.run(['inspect', '--raw', 'docker://gcr.io/distroless/static:no-such-tag'])).rejects.toThrow();
    expect(wire.connections - wireMark, 'connections to the tripwire').toBeGreaterThan(0);
  });
});

describe('Kubernetes node snippet', () => {
  it('is containerd config that points the CRI plugin at /etc/containerd/certs.d', async () => {
    const snippet = copyKubernetesNodeSnippet(join(root, 'kubernetes-node.toml'));
    // `config dump` parses and merges the config without starting anything; the CRI plugin must
    // stay enabled here, or its table is not part of the dump.
    const dump = await new Promise<string>((resolve, reject) =>
      execFile('containerd', ['--config', snippet, 'config', 'dump'], { timeout: 30_000 }, (error, stdout, stderr) => (error ? reject(new Error(stderr || error.message)) : resolve(stdout))),
    );
    expect(dump).toMatch(/\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\]\s+config_path = "\/etc\/containerd\/certs\.d"/);
  });
});
