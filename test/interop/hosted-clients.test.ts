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
 * `startTarget` is the registry under test: Docker's registry:2 today; the mirror's hosted
 * repositories by changing that one line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Containerd } from './support/containerd.js';
import { Dockerd, DockerdUnavailableError } from './support/dockerd.js';
import { Podman } from './support/podman.js';
import { Skopeo } from './support/skopeo.js';
import { Tripwire } from './support/tripwire.js';
import { blobsOf, MEDIA } from './support/images.js';
import { OciClient } from './support/oci-client.js';
import { containerdPushPull, dockerPushPull, listReferrers, podmanPushPull, pushArtifactWithSubject, skopeoCopyAllRoundTrip } from './support/push-clients.js';
import { multiPlatformIndex, pushLayer, singleImage } from './support/push-images.js';
import { endpointOf, pushSummaryMarkdown, summarizePush, type PushSummary } from './support/push-request-summary.js';
import { TEST_CREDENTIALS, startRegistry2Target, type PushTarget, type PushTargetStarter } from './support/push-targets.js';
import type { RecordedRequest } from './support/recording-proxy.js';

const startTarget: PushTargetStarter = startRegistry2Target;

let root: string;
let tripwire: Tripwire | undefined;
/** Anonymous pushes (registry:2's default, the seed workflow). */
let open: PushTarget | undefined;
/** htpasswd: every client logs in. */
let secured: PushTarget | undefined;
const summaries: PushSummary[] = [];

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'registry-mirror-hosted-clients-'));
  tripwire = await Tripwire.start();
  open = await startTarget(join(root, 'open'));
  secured = await startTarget(join(root, 'secured'), { credentials: TEST_CREDENTIALS });
});

afterAll(async () => {
  await open?.stop();
  await secured?.stop();
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
