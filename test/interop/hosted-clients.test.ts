/**
 * Issue 14 interop: the real clients push to a registry and pull back what they pushed.
 *   - dockerd: the `registry:2` seed workflow verbatim (`docker tag my-image localhost:PORT/my-image:latest`,
 *     push, rmi, pull), then `docker login` and pushes of `my-image` and `team/app` sharing a layer
 *     (the second push tries a cross-repository mount);
 *   - skopeo: `copy --all` of a multi-platform OCI index with attestations into the registry and
 *     back, digests equal;
 *   - containerd: `ctr images push` and `ctr images pull`;
 *   - podman (4.3): `podman login`, `push`, `pull`;
 *   - an OCI artifact with a `subject`, listed as a referrer (through the referrers API where the
 *     registry has one, else through the referrers tag the client maintains).
 * Each client talks to the registry through a RecordingProxy; the requests are summarised per
 * client (INTEROP_PUSH_REPORT=<file> writes the summaries as markdown).
 *
 * The registry under test is the mirror's hosted repositories (in front of the interop
 * upstreams: the open one registry-only, "defaultUpstream": null; the secured one with
 * `team/**` and `my-image` hosted beside the docker.io cache); INTEROP_PUSH_TARGET=registry2 runs
 * the same tests against Docker's registry:2, as they were recorded first. Against the mirror,
 * also: hosted and cached content side by side (a pull through while pushing, a push to a
 * proxied name that never reaches the upstream) and podman pulling through the shipped
 * deploy/clients/podman registries.conf.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Containerd } from './support/containerd.js';
import { Dockerd, DockerdUnavailableError } from './support/dockerd.js';
import { Podman } from './support/podman.js';
import { Skopeo, readOciIndex, verifiedLayoutBlobs } from './support/skopeo.js';
import { findImage } from './support/catalog.js';
import { podmanRegistriesConf } from './support/client-configs.js';
import { Tripwire } from './support/tripwire.js';
import { blobsOf, MEDIA } from './support/images.js';
import { OciClient } from './support/oci-client.js';
import { containerdPushPull, dockerPushPull, listReferrers, podmanPushPull, pushArtifactWithSubject, skopeoCopyAllRoundTrip } from './support/push-clients.js';
import { multiPlatformIndex, pushLayer, singleImage } from './support/push-images.js';
import { endpointOf, pushSummaryMarkdown, summarizePush, type PushSummary } from './support/push-request-summary.js';
import { TEST_CREDENTIALS, mirrorPushTarget, startRegistry2Target, type PushTarget } from './support/push-targets.js';
import type { RecordedRequest } from './support/recording-proxy.js';
import { startUpstreams, type Upstreams } from './support/upstreams.js';

const AGAINST_REGISTRY2 = process.env.INTEROP_PUSH_TARGET === 'registry2';

let root: string;
let tripwire: Tripwire | undefined;
/** The mirror's upstreams (docker.io = the hub); not started against registry:2. */
let upstreams: Upstreams | undefined;
/** Anonymous pushes (registry:2's default, the seed workflow). */
let open: PushTarget | undefined;
/** htpasswd: every client logs in. */
let secured: PushTarget | undefined;
const summaries: PushSummary[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'registry-mirror-hosted-clients-'));
  tripwire = await Tripwire.start();
  if (!AGAINST_REGISTRY2) upstreams = await startUpstreams(join(root, 'upstreams'));
  const startTarget = upstreams ? mirrorPushTarget(upstreams) : startRegistry2Target;
  open = await startTarget(join(root, 'open'));
  secured = await startTarget(join(root, 'secured'), { credentials: TEST_CREDENTIALS });
});

afterAll(async () => {
  await open?.stop();
  await secured?.stop();
  await upstreams?.stop();
  await tripwire?.close();
  if (process.env.INTEROP_PUSH_REPORT) writeFileSync(process.env.INTEROP_PUSH_REPORT, summaries.map(pushSummaryMarkdown).join('\n'));
  if (root && !process.env.INTEROP_KEEP) rmSync(root, { recursive: true, force: true });
});

function env() {
  if (!tripwire || !open || !secured) throw new Error('interop environment did not start');
  return { tripwire, open, secured };
}

/** Records what the client sent during `action`, checks nothing failed unexpectedly, returns the summary. */
async function recorded<T>(client: string, target: PushTarget, action: () => Promise<T>): Promise<{ result: T; summary: PushSummary; requests: RecordedRequest[] }> {
  const mark = target.proxy.mark();
  const wireMark = env().tripwire.connections;
  const result = await action();
  const requests = target.proxy.since(mark);
  const summary = summarizePush(`${client} -> ${target.name}${target.credentials ? ' (htpasswd)' : ''}`, requests);
  summaries.push(summary);
  expect(unexpectedFailures(requests, target), `${client}: requests that failed`).toEqual([]);
  expect(env().tripwire.connections - wireMark, `${client} went past the registry under test`).toBe(0);
  return { result, summary, requests };
}

/**
 * Failures that are part of a normal push: the 401 challenge before credentials are sent,
 * 404 for "does it exist yet" checks, and (without the referrers API) the 404s of the fallback.
 */
function unexpectedFailures(requests: RecordedRequest[], target: PushTarget): string[] {
  return requests
    .filter((request) => request.status >= 400)
    .filter((request) => !(request.status === 401 && (request.authorization === 'none' || endpointOf(request.url).endpoint === '/v2/')))
    .filter((request) => !(request.status === 404 && (request.method === 'HEAD' || /\/manifests\/sha256-/.test(request.url))))
    .filter((request) => !(request.status === 404 && !target.referrersApi && endpointOf(request.url).endpoint.startsWith('/v2/<name>/referrers/')))
    .map((request) => `${request.method} ${request.url} -> ${request.status}`);
}

async function startDockerd(dir: string, skip: (note: string) => never): Promise<Dockerd> {
  return Dockerd.start(dir, env().tripwire, {}).catch((error: unknown) => {
    if (error instanceof DockerdUnavailableError) skip(error.message);
    throw error;
  });
}

describe('dockerd', () => {
  it('seed workflow: docker tag my-image localhost:PORT/my-image:latest, push, rmi, pull, without login', async ({ skip }) => {
    const { open: target } = env();
    const dockerd = await startDockerd(join(root, 'dockerd-seed'), skip);
    try {
      const image = singleImage('docker', 'my-image');
      const spec = { repository: 'my-image', tag: 'latest', dir: join(root, 'dockerd-seed', 'work'), host: `localhost:${target.proxy.port}` };
      const { result } = await recorded('dockerd', target, () => dockerPushPull(dockerd, target, spec, image));
      expect(result.pulledDigest).toBe(result.pushedDigest);
      expect(result.imageId, 'image ID (config digest) survives the round trip').toBe(image.blobs[0]!.digest);
    } finally {
      await dockerd.stop();
    }
  });

  it('docker login; my-image and team/app sharing a layer: pushed, pulled, and the second push tries a mount', async ({ skip }) => {
    const { secured: target } = env();
    const dockerd = await startDockerd(join(root, 'dockerd-login'), skip);
    try {
      const base = pushLayer('shared-base', 64 * 1024);
      const first = singleImage('docker', 'login-my-image', base);
      const second = singleImage('docker', 'login-team-app', base);
      const dir = join(root, 'dockerd-login', 'work');
      const single = await recorded('dockerd (login)', target, () => dockerPushPull(dockerd, target, { repository: 'my-image', tag: 'v1', dir }, first));
      expect(single.result.pulledDigest).toBe(single.result.pushedDigest);
      expect(single.result.imageId).toBe(first.blobs[0]!.digest);
      const nested = await recorded('dockerd (login, mount)', target, () => dockerPushPull(dockerd, target, { repository: 'team/app', tag: 'v1', dir }, second));
      expect(nested.result.pulledDigest).toBe(nested.result.pushedDigest);
      expect(nested.result.imageId).toBe(second.blobs[0]!.digest);
      expect(nested.summary.mounts.map((mount) => `${mount.from} -> ${mount.repository}`)).toContain('my-image -> team/app');
      expect(nested.requests.filter((request) => request.authorization === 'basic').length, 'docker login credentials are sent').toBeGreaterThan(0);
    } finally {
      await dockerd.stop();
    }
  });
});

describe('skopeo', () => {
  it('copy --all of a multi-platform index with attestations into team/multi and back: digests equal', async () => {
    const { secured: target, tripwire: wire } = env();
    const index = multiPlatformIndex('multi');
    const skopeo = await Skopeo.create(join(root, 'skopeo'), { deadProxyPort: wire.port });
    const { result, summary } = await recorded('skopeo', target, () => skopeoCopyAllRoundTrip(skopeo, target, { repository: 'team/multi', tag: 'v1', dir: join(root, 'skopeo', 'work') }, index));
    expect(result.pushedDigest, 'the registry serves the exact index bytes').toBe(index.digest);
    expect(result.pulledDigest).toBe(index.digest);
    const missing = [...index.manifests.map((manifest) => manifest.digest), ...blobsOf(index).map((blob) => blob.digest)].filter((digest) => !result.pulledBlobs.has(digest));
    expect(missing, 'manifests and blobs missing after the copy back').toEqual([]);
    expect([...summary.endpoints.keys()]).toContain('PUT /v2/<name>/manifests/<digest>');
  });
});

describe('containerd', () => {
  it('ctr images push, then ctr images pull of team/ctr: the same manifest digest', async () => {
    const { secured: target, tripwire: wire } = env();
    const containerd = await Containerd.start(join(root, 'containerd'), wire);
    try {
      const image = singleImage('oci', 'ctr');
      const { result, requests } = await recorded('containerd', target, () => containerdPushPull(containerd, target, { repository: 'team/ctr', tag: 'v1', dir: join(root, 'containerd', 'work') }, image));
      expect(result.pulledDigest).toBe(image.digest);
      const blobGets = requests.filter((request) => request.method === 'GET' && endpointOf(request.url).endpoint === '/v2/<name>/blobs/<digest>');
      expect(blobGets.length, 'the pull downloaded config and layers').toBe(image.blobs.length);
    } finally {
      await containerd.stop();
    }
  });
});

describe('podman', () => {
  it('podman login, push and pull of team/podman: same digest and image ID', async () => {
    const { secured: target, tripwire: wire } = env();
    const podman = Podman.create(join(root, 'podman'), wire);
    try {
      const image = singleImage('docker', 'podman');
      const { result } = await recorded('podman', target, () => podmanPushPull(podman, target, { repository: 'team/podman', tag: 'v1', dir: join(root, 'podman', 'work') }, image));
      expect(result.pulledDigest).toBe(result.pushedDigest);
      expect(result.imageId).toBe(image.blobs[0]!.digest);
    } finally {
      podman.remove();
    }
  });
});

describe('OCI artifacts with a subject', () => {
  it('two artifacts referring to an image are listed as its referrers, with artifactType and annotations, and filtered by artifactType', async () => {
    const { secured: target } = env();
    const image = singleImage('oci', 'subject');
    const client = new OciClient(target.url, target.credentials);
    for (const blob of image.blobs) await client.pushBlob('team/signed', blob.bytes);
    await client.pushManifest('team/signed', 'v1', image.bytes, image.mediaType);
    const subject = { mediaType: MEDIA.ociManifest, digest: image.digest, size: image.size };
    const { result: artifacts } = await recorded('artifact (oci-client)', target, async () => [
      await pushArtifactWithSubject(target, 'team/signed', subject, 'application/vnd.example.sbom.v1'),
      await pushArtifactWithSubject(target, 'team/signed', subject, 'application/vnd.example.signature.v1'),
    ]);
    const all = await listReferrers(target, 'team/signed', image.digest);
    const filtered = await listReferrers(target, 'team/signed', image.digest, 'application/vnd.example.sbom.v1');
    expect(all.via).toBe(target.referrersApi ? 'api' : 'tag-schema');
    for (const artifact of artifacts) {
      expect(artifact.ociSubject, 'OCI-Subject on the manifest PUT').toBe(target.referrersApi ? image.digest : null);
      expect(all.manifests).toContainEqual(expect.objectContaining({ mediaType: MEDIA.ociManifest, digest: artifact.digest, artifactType: artifact.artifactType, annotations: artifact.annotations }));
    }
    expect(all.manifests).toHaveLength(2);
    expect(filtered.manifests.map((entry) => entry.digest)).toEqual([artifacts[0]!.digest]);
    if (target.referrersApi) expect(filtered.filtersApplied).toBe('artifactType');
  });
});

describe.skipIf(AGAINST_REGISTRY2)('hosted next to cached content (the mirror only)', () => {
  it('library/alpine:3.20 pulls through byte-exact while dockerd pushes and pulls team/app; a push to library/alpine never reaches the upstream', async ({ skip }) => {
    const { secured: target, tripwire: wire } = env();
    const hub = upstreams!.hub.proxy.requests;
    const alpine = findImage(upstreams!.catalog, 'library/alpine', '3.20');
    const dockerd = await startDockerd(join(root, 'dockerd-coexist'), skip);
    const skopeo = await Skopeo.create(join(root, 'skopeo-coexist'), { deadProxyPort: wire.port });
    try {
      const image = singleImage('docker', 'coexist-team-app');
      const creds = ['--src-creds', `${target.credentials!.username}:${target.credentials!.password}`];
      const layout = join(root, 'skopeo-coexist', 'alpine');
      const hubMark = hub.mark();
      const [pushed] = await Promise.all([
        dockerPushPull(dockerd, target, { repository: 'team/app', tag: 'coexist', dir: join(root, 'dockerd-coexist', 'work') }, image),
        skopeo.run(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', ...creds, `docker://${target.host}/library/alpine:3.20`, `oci:${layout}:3.20`]),
      ]);
      expect(pushed.pulledDigest).toBe(pushed.pushedDigest);
      expect(readOciIndex(layout).find((entry) => entry.annotations?.['org.opencontainers.image.ref.name'] === '3.20')?.digest).toBe(alpine.image.digest);
      const pulled = verifiedLayoutBlobs(layout);
      expect(blobsOf(alpine.image).map((blob) => blob.digest).filter((digest) => !pulled.has(digest)), 'alpine blobs missing or wrong').toEqual([]);
      expect(hub.since(hubMark).filter((entry) => entry.path.includes('team/app')), 'team/app never asked of the upstream').toEqual([]);

      await dockerd.docker(['tag', `${target.host}/team/app:coexist`, `${target.host}/library/alpine:pushed`]);
      const writesMark = hub.mark();
      await expect(dockerd.docker(['push', `${target.host}/library/alpine:pushed`])).rejects.toThrow();
      expect(hub.since(writesMark).filter((entry) => !['GET', 'HEAD'].includes(entry.method)), 'writes that reached the upstream').toEqual([]);
      const refused = target.proxy.requests.filter((request) => request.url.startsWith('/v2/library/alpine/') && request.method !== 'GET' && request.method !== 'HEAD');
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.every((request) => request.status === 405)).toBe(true);
    } finally {
      await dockerd.stop();
    }
  });

  it('podman pulls a cached image through the shipped deploy/clients/podman registries.conf', async () => {
    const { tripwire: wire } = env();
    const proxied = await mirrorPushTarget(upstreams!)(join(root, 'podman-proxy'), { registryOnly: false });
    const podman = Podman.create(join(root, 'podman-conf'), wire, { registriesConf: podmanRegistriesConf(proxied.host, wire.host) });
    try {
      const alpine = findImage(upstreams!.catalog, 'library/alpine', '3.20');
      const wireMark = wire.connections;
      await podman.run(['pull', 'docker.io/library/alpine:3.20']);
      const inspected = JSON.parse(await podman.run(['image', 'inspect', 'docker.io/library/alpine:3.20'])) as Array<{ Digest: string }>;
      expect(inspected[0]?.Digest).toBe(alpine.image.digest);
      expect(proxied.proxy.requests.map((request) => `${request.method} ${request.url}`)).toContain('GET /v2/library/alpine/manifests/3.20');
      expect(wire.connections - wireMark, 'podman fell back past the mirror').toBe(0);
    } finally {
      podman.remove();
      await proxied.stop();
    }
  });
});
