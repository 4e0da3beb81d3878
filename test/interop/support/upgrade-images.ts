/**
 * The images of the upgrade check (test/interop/upgrade.test.ts), made deterministically (the
 * same seeds give the same bytes and digests), a way to publish them on fake upstreams, and a
 * client that pulls an image whole through a mirror checking every digest. Shared by the test
 * and by the script that made the fixture cache with the earlier release
 * (scripts/make-upgrade-fixture.ts), so both speak of the same bytes.
 */
import { createHash } from 'node:crypto';
import type { FakeRegistry } from '../../helpers/fake-registry.js';
import { get } from '../../helpers/http.js';
import { makeImage, makeIndex, pushImage, type TestImage, type TestIndex } from '../../helpers/test-images.js';

export interface UpgradeImage {
  upstream: 'docker.io' | 'gcr.io';
  repository: string;
  tag: string;
  image: TestImage | TestIndex;
}

export function upgradeImages(): UpgradeImage[] {
  const arm = { architecture: 'arm64', os: 'linux', variant: 'v8' };
  return [
    { upstream: 'docker.io', repository: 'library/alpine', tag: '3.20', image: makeImage({ layers: [60_000, 9_000], seed: 'upgrade-alpine', mediaTypes: 'docker' }) },
    {
      upstream: 'docker.io', repository: 'myorg/app', tag: 'v1',
      image: makeIndex([makeImage({ layers: [30_000], seed: 'upgrade-app-amd64' }), makeImage({ layers: [31_000], seed: 'upgrade-app-arm64', platform: arm })]),
    },
    { upstream: 'docker.io', repository: 'myorg/app', tag: 'v1-amd64', image: makeImage({ layers: [30_000], seed: 'upgrade-app-amd64' }) },
    { upstream: 'gcr.io', repository: 'distroless/static', tag: 'nonroot', image: makeImage({ layers: [20_000], seed: 'upgrade-distroless' }) },
  ];
}

export function publishUpgradeImages(upstreams: Record<UpgradeImage['upstream'], FakeRegistry>): void {
  for (const entry of upgradeImages()) pushImage(upstreams[entry.upstream], entry.repository, entry.tag, entry.image);
}

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json', 'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json', 'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** The mirror path of a repository: docker.io is the default upstream, others are named first. */
function mirrorPath(entry: Pick<UpgradeImage, 'upstream' | 'repository'>): string {
  return entry.upstream === 'docker.io' ? entry.repository : `${entry.upstream}/${entry.repository}`;
}

/**
 * Pulls `entry` through the mirror at `base` as a client does (the tag, then every child
 * manifest and blob by digest), and also the top manifest by digest. Throws unless every status
 * is 200 and every body hashes to its digest; returns the digests read.
 */
export async function pullWhole(base: string, entry: UpgradeImage): Promise<string[]> {
  const repo = mirrorPath(entry);
  const read: string[] = [];
  const fetchChecked = async (kind: 'manifests' | 'blobs', reference: string, expected?: string): Promise<Buffer> => {
    const response = await get(`${base}/v2/${repo}/${kind}/${reference}`, { accept: ACCEPT });
    if (response.status !== 200) throw new Error(`GET ${repo}/${kind}/${reference}: ${response.status} ${response.body.toString().slice(0, 200)}`);
    const digest = sha256(response.body);
    if (expected !== undefined && digest !== expected) throw new Error(`GET ${repo}/${kind}/${reference}: body hashes to ${digest}, expected ${expected}`);
    read.push(digest);
    return response.body;
  };
  const top = await fetchChecked('manifests', entry.tag, entry.image.manifest.digest);
  await fetchChecked('manifests', entry.image.manifest.digest, entry.image.manifest.digest);
  const parsed = JSON.parse(top.toString()) as { manifests?: Array<{ digest: string }> };
  const images = parsed.manifests ? await Promise.all(parsed.manifests.map(async ({ digest }) => JSON.parse((await fetchChecked('manifests', digest, digest)).toString()))) : [JSON.parse(top.toString())];
  for (const manifest of images as Array<{ config: { digest: string }; layers: Array<{ digest: string }> }>) {
    for (const { digest } of [manifest.config, ...manifest.layers]) await fetchChecked('blobs', digest, digest);
  }
  return read;
}
