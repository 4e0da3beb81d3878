/**
 * Push-and-pull round trips with real clients, against any registry (a PushTarget): each
 * function loads a locally built image into the client, pushes it (logging in first when the
 * target wants credentials), removes it locally, pulls it back and returns what a test compares
 * with the image it built. What the client sent is in `target.proxy`.
 *
 *   dockerd     docker load, login, tag, push, rmi, pull
 *   skopeo      copy --all of an OCI layout (a multi-platform index) into the registry and back
 *   containerd  ctr images import, push, rm, pull
 *   podman      load, login, push, rmi, pull
 *   artifact    an OCI artifact with a `subject`, then its referrers listing (oci-client.ts)
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Containerd } from './containerd.js';
import type { Dockerd } from './dockerd.js';
import type { Podman } from './podman.js';
import type { Skopeo } from './skopeo.js';
import { readOciIndex, verifiedLayoutBlobs } from './skopeo.js';
import type { ImageIndex, ImageManifest } from './images.js';
import { MEDIA, jsonBlob } from './images.js';
import { EMPTY_CONFIG, writeDockerArchive, writeOciArchive, writeOciLayout } from './push-images.js';
import { OciClient, sha256, type ReferrersListing } from './oci-client.js';
import type { PushTarget } from './push-targets.js';

export interface RoundTrip {
  /** The manifest digest the client reported after pushing. */
  pushedDigest: string;
  /** What the client holds after pulling it back: manifest digest and image (config) ID. */
  pulledDigest: string;
  imageId?: string;
}

export interface PushSpec {
  repository: string;
  tag: string;
  /** Scratch space for archives and layouts. */
  dir: string;
  /** host:port in the image reference; default the target's (e.g. `localhost:PORT` for the seed workflow). */
  host?: string;
}

const ref = (target: PushTarget, spec: PushSpec) => `${spec.host ?? target.host}/${spec.repository}:${spec.tag}`;

export async function dockerPushPull(dockerd: Dockerd, target: PushTarget, spec: PushSpec, image: ImageManifest): Promise<RoundTrip> {
  mkdirSync(spec.dir, { recursive: true });
  const archive = join(spec.dir, `${spec.repository.replace(/\//g, '_')}.docker.tar`);
  const local = `interop-local/${spec.repository}:${spec.tag}`;
  await writeDockerArchive(archive, image, local);
  await dockerd.docker(['load', '-i', archive]);
  if (target.credentials) await dockerd.docker(['login', '-u', target.credentials.username, '-p', target.credentials.password, spec.host ?? target.host]);
  const remote = ref(target, spec);
  await dockerd.docker(['tag', local, remote]);
  const pushed = /digest: (sha256:[0-9a-f]{64})/.exec(await dockerd.docker(['push', remote]))?.[1];
  if (!pushed) throw new Error(`docker push ${remote} printed no digest`);
  await dockerd.docker(['rmi', remote, local]);
  const gone = await dockerd.docker(['image', 'inspect', image.blobs[0]!.digest]).then(() => false, () => true);
  if (!gone) throw new Error(`docker rmi left ${image.blobs[0]!.digest} behind: the pull would not download anything`);
  await dockerd.pull(remote);
  const repoDigest = (await dockerd.repoDigests(remote)).find((entry) => entry.startsWith(`${(spec.host ?? target.host)}/${spec.repository}@`));
  return { pushedDigest: pushed, pulledDigest: repoDigest?.split('@')[1] ?? '', imageId: await dockerd.imageId(remote) };
}

/** `skopeo copy --all --preserve-digests` of the index into the registry and back into a new layout. */
export async function skopeoCopyAllRoundTrip(skopeo: Skopeo, target: PushTarget, spec: PushSpec, index: ImageIndex): Promise<RoundTrip & { pulledBlobs: Set<string> }> {
  const source = join(spec.dir, 'source');
  const back = join(spec.dir, 'back');
  writeOciLayout(source, index, spec.tag);
  const creds = (direction: 'src' | 'dest') => (target.credentials ? [`--${direction}-creds`, `${target.credentials.username}:${target.credentials.password}`] : []);
  await skopeo.run(['copy', '--all', '--preserve-digests', '--dest-tls-verify=false', ...creds('dest'), `oci:${source}:${spec.tag}`, `docker://${ref(target, spec)}`]);
  const pushed = await skopeo.rawManifestDigest(ref(target, spec), creds('src').length ? ['--creds', creds('src')[1]!] : []);
  mkdirSync(back, { recursive: true });
  await skopeo.run(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', ...creds('src'), `docker://${ref(target, spec)}`, `oci:${back}:${spec.tag}`]);
  const entry = readOciIndex(back).find((manifest) => manifest.annotations?.['org.opencontainers.image.ref.name'] === spec.tag);
  return { pushedDigest: pushed, pulledDigest: entry?.digest ?? '', pulledBlobs: verifiedLayoutBlobs(back) };
}

/** `ctr images import` of an OCI archive, `ctr images push`, remove it with its content, `ctr images pull`. */
export async function containerdPushPull(containerd: Containerd, target: PushTarget, spec: PushSpec, image: ImageManifest): Promise<RoundTrip> {
  mkdirSync(spec.dir, { recursive: true });
  const archive = join(spec.dir, 'image.oci.tar');
  const local = `interop.local/${spec.repository}:${spec.tag}`;
  await writeOciArchive(archive, image, spec.tag, local);
  const ns = ['--namespace', 'push'];
  const remote = ref(target, spec);
  const user = target.credentials ? ['--user', `${target.credentials.username}:${target.credentials.password}`] : [];
  await containerd.ctr([...ns, 'images', 'import', archive]);
  await containerd.ctr([...ns, 'images', 'push', '--plain-http', ...user, remote, local]);
  await containerd.ctr([...ns, 'images', 'rm', '--sync', local]);
  // With the image gone, content can be removed too, so the pull has to download it all.
  for (const digest of [image.digest, ...image.blobs.map((blob) => blob.digest)]) await containerd.ctr([...ns, 'content', 'rm', digest]).catch(() => undefined);
  const leftover = await containerd.contentDigests('push');
  if (leftover.has(image.digest)) throw new Error('ctr content rm left the manifest behind: the pull would not download it');
  await containerd.ctr([...ns, 'images', 'pull', '--plain-http', ...user, remote]);
  const pulled = await containerd.image('push', remote);
  return { pushedDigest: image.digest, pulledDigest: pulled.digest };
}

/** podman load (docker archive), login, push by image ID, rmi everything, pull. */
export async function podmanPushPull(podman: Podman, target: PushTarget, spec: PushSpec, image: ImageManifest): Promise<RoundTrip> {
  mkdirSync(spec.dir, { recursive: true });
  const archive = join(spec.dir, 'image.docker.tar');
  await writeDockerArchive(archive, image, `interop-local/${spec.repository}:${spec.tag}`);
  await podman.run(['load', '-i', archive]);
  const host = spec.host ?? target.host;
  if (target.credentials) await podman.run(['login', '--tls-verify=false', '-u', target.credentials.username, '-p', target.credentials.password, host]);
  const imageId = image.blobs[0]!.digest.slice(7);
  const digestFile = join(spec.dir, 'pushed.digest');
  await podman.run(['push', '--tls-verify=false', '--digestfile', digestFile, imageId, `docker://${ref(target, spec)}`]);
  await podman.reset();
  await podman.run(['pull', '--tls-verify=false', ref(target, spec)]);
  const inspected = JSON.parse(await podman.run(['image', 'inspect', ref(target, spec)])) as Array<{ Id: string; Digest: string }>;
  return { pushedDigest: readFileSync(digestFile, 'utf8').trim(), pulledDigest: inspected[0]?.Digest ?? '', imageId: `sha256:${inspected[0]?.Id ?? ''}` };
}

export interface ArtifactPush {
  digest: string;
  artifactType: string;
  annotations: Record<string, string>;
  /** The OCI-Subject header of the manifest PUT (null: the registry ignored the subject). */
  ociSubject: string | null;
}

/** An SBOM-like artifact (empty config, one blob, artifactType, annotations) whose subject is `subject`. */
export async function pushArtifactWithSubject(target: PushTarget, repository: string, subject: { mediaType: string; digest: string; size: number }, artifactType: string): Promise<ArtifactPush> {
  const client = new OciClient(target.url, target.credentials);
  const payload = jsonBlob({ spdxVersion: 'SPDX-2.3', name: `${artifactType} for ${subject.digest}` });
  await client.pushBlob(repository, EMPTY_CONFIG.bytes);
  await client.pushBlob(repository, payload.bytes);
  const annotations = { 'org.opencontainers.image.created': '2024-06-01T00:00:00Z', 'org.example.kind': artifactType.split('.').at(-1) ?? 'x' };
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    artifactType,
    config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: EMPTY_CONFIG.digest, size: EMPTY_CONFIG.size },
    layers: [{ mediaType: 'application/spdx+json', digest: payload.digest, size: payload.size }],
    subject,
    annotations,
  }));
  const pushed = await client.pushReferrer(repository, manifest, MEDIA.ociManifest, subject.digest);
  return { digest: sha256(manifest), artifactType, annotations, ociSubject: pushed.ociSubject };
}

export function listReferrers(target: PushTarget, repository: string, subject: string, artifactType?: string): Promise<ReferrersListing> {
  return new OciClient(target.url, target.credentials).referrers(repository, subject, artifactType);
}
