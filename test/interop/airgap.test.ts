/**
 * Issue 6 acceptance, with the real upstreams and the built CLI (`node dist/main.js`):
 *   1. connected side: `warm` four images through the counting proxies, then `export --all`;
 *   2. the archive is a standard OCI layout: skopeo reads the OCI-typed images from it;
 *   3. air-gapped side: an OFFLINE mirror whose every upstream URL is the tripwire starts on an
 *      EMPTY cache, and `import` loads the archive beside it (a separate process on the same
 *      cache: the server picks the tags up without a restart, json-file-store.ts);
 *   4. skopeo (`copy --all`), containerd (`ctr image pull`, all platforms of nginx) and dockerd
 *      pull every warmed image through it with the seeded digests, while the tripwire (the
 *      upstreams, and every client's proxy and fallback registry) sees zero connections;
 *   5. an image that was not warmed is a 404 that says the mirror is offline.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreams, type Upstreams } from './support/upstreams.js';
import { ensureMirrorBuilt, REPO_ROOT, startMirror, writeMirrorConfig, type RunningMirror } from './support/mirror.js';
import { findImage, type CatalogImage } from './support/catalog.js';
import { Tripwire } from './support/tripwire.js';
import { Containerd } from './support/containerd.js';
import { Dockerd, DockerdUnavailableError } from './support/dockerd.js';
import { Skopeo, readOciIndex, verifiedLayoutBlobs } from './support/skopeo.js';
import { dockerDaemonJson, writeContainerdHostsDir } from './support/client-configs.js';
import { blobsOf, MEDIA, platformManifest, type Image } from './support/images.js';
import { sha256Digest } from './support/layers.js';

const run = promisify(execFile);
const MAIN = join(REPO_ROOT, 'dist', 'main.js');
const CLI_TIMEOUT_MS = 120_000;
const HOST_ARCH = 'amd64';

/** [CLI reference, full reference (ref.name in the archive), catalog repo, tag]. */
const WARMED = [
  ['library/alpine:3.20', 'docker.io/library/alpine:3.20', 'library/alpine', '3.20'],
  ['library/nginx:1.27', 'docker.io/library/nginx:1.27', 'library/nginx', '1.27'],
  ['myorg/app:v1', 'docker.io/myorg/app:v1', 'myorg/app', 'v1'],
  ['gcr.io/distroless/static:nonroot', 'gcr.io/distroless/static:nonroot', 'distroless/static', 'nonroot'],
] as const;

let root: string;
let archive: string;
let tripwire: Tripwire | undefined;
let upstreams: Upstreams | undefined;
let offline: RunningMirror | undefined;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'registry-mirror-airgap-'));
  archive = join(root, 'mirror-images.tar');
  ensureMirrorBuilt();
  tripwire = await Tripwire.start();
  upstreams = await startUpstreams(join(root, 'upstreams'));
});

afterAll(async () => {
  await offline?.stop();
  await upstreams?.stop();
  await tripwire?.close();
  if (root && !process.env.INTEROP_KEEP) rmSync(root, { recursive: true, force: true });
});

function env() {
  if (!upstreams || !tripwire) throw new Error('interop environment did not start');
  return { upstreams, tripwire };
}

function served(): { mirror: RunningMirror; host: string } {
  if (!offline) throw new Error('the offline mirror did not start');
  return { mirror: offline, host: offline.url.replace(/^http:\/\//, '').replace(/\/$/, '') };
}

const seeded = (repo: string, tag: string): CatalogImage => findImage(env().upstreams.catalog, repo, tag);

/** `node dist/main.js <args>`, failing with its output when it exits non-zero. */
async function cli(args: string[]): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [MAIN, ...args], { cwd: root, timeout: CLI_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`registry-mirror ${args.join(' ')} failed: ${failure.message}\n${failure.stdout ?? ''}\n${failure.stderr ?? ''}`);
  }
}

function upstreamRequests(): number {
  const { upstreams: up } = env();
  return up.hub.proxy.requests.mark() + up.gcr.proxy.requests.mark() + up.cdn.requests.mark() + up.token.requests.mark();
}

function expectNoConnections(what: string, tripwireMark: number): void {
  expect(env().tripwire.connections - tripwireMark, `${what}: connections to the tripwire`).toBe(0);
}

/** Every manifest digest of an image: the index (if any) and each platform manifest. */
function manifestDigests(image: Image): string[] {
  return image.kind === 'index' ? [image.digest, ...image.manifests.map((manifest) => manifest.digest)] : [image.digest];
}

describe('air gap: warm and export on the connected side', () => {
  it('warm fetches the four images through the upstreams; export --all writes them by full reference', async () => {
    mkdirSync(join(root, 'connected'), { recursive: true });
    const config = writeMirrorConfig(join(root, 'connected'), env().upstreams);
    const before = upstreamRequests();
    const summary = await cli(['warm', '--config', config, ...WARMED.map(([ref]) => ref)]);
    for (const [, full, repo, tag] of WARMED) expect(summary, full).toMatch(new RegExp(`${full.replace(/[.]/g, '\\.')}\\s+ok\\s+${seeded(repo, tag).image.digest.slice(0, 19)}`));
    expect(upstreamRequests() - before, 'requests that reached the upstreams').toBeGreaterThan(0);

    await cli(['export', '--config', config, '--out', archive, '--all']);
    const layout = join(root, 'archive-index');
    mkdirSync(layout, { recursive: true });
    await run('tar', ['-xf', archive, '-C', layout, 'index.json', 'oci-layout']);
    const refs = Object.fromEntries(readOciIndex(layout).map((entry) => [entry.annotations?.['org.opencontainers.image.ref.name'], entry.digest]));
    expect(refs).toEqual(Object.fromEntries(WARMED.map(([, full, repo, tag]) => [full, seeded(repo, tag).image.digest])));
  });

  it('skopeo reads the OCI-typed images from the archive with the seeded digests', async () => {
    const skopeo = await Skopeo.create(join(root, 'skopeo-archive'), { deadProxyPort: env().tripwire.port });
    for (const [, full, repo, tag] of WARMED) {
      const entry = seeded(repo, tag);
      const source = `oci-archive:${archive}:${full}`;
      if (entry.image.mediaType === MEDIA.ociManifest || entry.image.mediaType === MEDIA.ociIndex) {
        const inspected = JSON.parse(await skopeo.run(['inspect', source])) as { Digest: string };
        expect(inspected.Digest, full).toBe(entry.image.digest);
        expect(sha256Digest(Buffer.from(await skopeo.run(['inspect', '--raw', source]))), full).toBe(entry.image.digest);
      } else {
        // skopeo 1.9 (containers/image) only matches index.json entries with OCI media types; the
        // seeded alpine and nginx are Docker-typed, as Docker Hub's are. the README's air-gap section says so;
        // `registry-mirror import` reads these entries (checked below through the offline mirror).
        await expect(skopeo.run(['inspect', source]), full).rejects.toThrow(/no descriptor found for reference/);
      }
    }
  });
});

describe('air gap: import into an empty cache of an offline mirror, and pull with every client', () => {
  beforeAll(async () => {
    const wire = env().tripwire;
    // Every upstream URL leads to the tripwire: any dial the mirror made would be counted.
    offline = await startMirror(join(root, 'offline'), env().upstreams, {
      offline: true,
      upstreams: { 'docker.io': { url: wire.url }, 'gcr.io': { url: wire.url } },
    });
    // `import` runs as its own process beside the running server, on its (empty) cache.
    const summary = await cli(['import', '--config', join(root, 'offline', 'mirror.config.json'), archive]);
    for (const [, full] of WARMED) expect(summary, full).toMatch(new RegExp(`${full.replace(/[.]/g, '\\.')}\\s+ok`));
  });

  it('skopeo copy --all gets every platform of every image, with the seeded digests', async () => {
    const { tripwire: wire } = env();
    const wireMark = wire.connections;
    const upstreamMark = upstreamRequests();
    const { host } = served();
    const skopeo = await Skopeo.create(join(root, 'skopeo-offline'), { deadProxyPort: wire.port });
    for (const [, full, repo, tag] of WARMED) {
      const entry = seeded(repo, tag);
      const name = full.startsWith('docker.io/') ? repo : `gcr.io/${repo}`;
      expect(await skopeo.rawManifestDigest(`${host}/${name}:${tag}`), full).toBe(entry.image.digest);
      const layout = join(root, 'skopeo-offline', 'oci', repo);
      await skopeo.copyToOci(host, name, tag, layout);
      const blobs = verifiedLayoutBlobs(layout);
      // OCI manifests are copied untouched; Docker ones are converted, so only their layers keep digests.
      const oci = entry.image.mediaType === MEDIA.ociManifest || entry.image.mediaType === MEDIA.ociIndex;
      const expected = oci
        ? [...manifestDigests(entry.image), ...blobsOf(entry.image).map((blob) => blob.digest)]
        : (entry.image.kind === 'index' ? entry.image.manifests : [entry.image]).flatMap((manifest) => manifest.blobs.slice(1).map((blob) => blob.digest));
      expect(expected.filter((digest) => !blobs.has(digest)), `${full}: missing from the copy`).toEqual([]);
    }
    expectNoConnections('skopeo', wireMark);
    expect(upstreamRequests() - upstreamMark, 'requests at the real upstreams').toBe(0);
  });

  it('containerd (hosts.toml) pulls every image, nginx with --all-platforms, with the seeded digests', async () => {
    const { tripwire: wire } = env();
    const wireMark = wire.connections;
    const dir = join(root, 'containerd-offline');
    const containerd = await Containerd.start(dir, wire);
    try {
      const hostsDir = writeContainerdHostsDir(join(dir, 'certs.d'), served().host, wire.url, ['docker.io', 'gcr.io']);
      for (const [, full, repo, tag] of WARMED) {
        const entry = seeded(repo, tag);
        const allPlatforms = entry.image.kind === 'index' ? ['--all-platforms'] : [];
        await containerd.ctr(['--namespace', 'airgap', 'image', 'pull', '--hosts-dir', hostsDir, '--snapshotter', 'native', ...allPlatforms, full]);
        expect((await containerd.image('airgap', full)).digest, full).toBe(entry.image.digest);
      }
      const content = await containerd.contentDigests('airgap');
      for (const [, full, repo, tag] of WARMED) {
        const { image } = seeded(repo, tag);
        const expected = [...manifestDigests(image), ...blobsOf(image).map((blob) => blob.digest)];
        expect(expected.filter((digest) => !content.has(digest)), `${full}: missing from containerd's content store`).toEqual([]);
      }
      expectNoConnections('containerd', wireMark);
    } finally {
      await containerd.stop();
    }
  });

  it('dockerd (registry-mirrors) pulls the docker.io images, and gcr.io through the path prefix', async ({ skip }) => {
    const { tripwire: wire } = env();
    const wireMark = wire.connections;
    const { host } = served();
    const dockerd = await Dockerd.start(join(root, 'dockerd-offline'), wire, dockerDaemonJson(host)).catch((error: unknown) => {
      if (error instanceof DockerdUnavailableError) skip(error.message);
      throw error;
    });
    try {
      const pulls = WARMED.map(([, full, repo, tag]) => [full.startsWith('docker.io/') ? `${repo.replace(/^library\//, '')}:${tag}` : `${host}/${full}`, seeded(repo, tag)] as const);
      for (const [ref, entry] of pulls) {
        await dockerd.pull(ref);
        expect(await dockerd.repoDigests(ref), ref).toEqual([`${ref.slice(0, ref.lastIndexOf(':'))}@${entry.image.digest}`]);
        expect(await dockerd.imageId(ref), `${ref} image ID (config digest)`).toBe(platformManifest(entry.image, HOST_ARCH).blobs[0]?.digest);
      }
      expectNoConnections('dockerd', wireMark);
    } finally {
      await dockerd.stop();
    }
  });

  it('an image that was not warmed is a 404 saying the mirror is offline, and nothing is dialled', async () => {
    const wireMark = env().tripwire.connections;
    const response = await fetch(`${served().mirror.url}/v2/library/redis/manifests/7.2`, { headers: { accept: MEDIA.ociIndex } });
    expect(response.status).toBe(404);
    const body = (await response.json()) as { errors: Array<{ code: string; message: string }> };
    expect(body.errors[0]?.code).toBe('MANIFEST_UNKNOWN');
    expect(body.errors[0]?.message).toMatch(/offline/);
    expectNoConnections('the offline mirror', wireMark);
    expect(env().tripwire.connections, 'connections to the tripwire over the whole offline phase').toBe(0);
  });
});
