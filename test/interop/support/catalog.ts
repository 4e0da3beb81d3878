/**
 * The images seeded into the stand-in upstreams: small, but shaped like the real ones a mirror
 * meets (single-platform Docker schema 2, a Docker manifest list, an OCI index with attestation
 * manifests, many small layers, an OCI image of a few MB, a private repository, and gcr images).
 * Total blob bytes stay around 8 MB so seeding takes seconds.
 */
import { buildAttestation, buildImage, buildIndex, buildLayer, type Image, type ImageManifest } from './images.js';
import type { LayerFile } from './layers.js';

const KB = 1024;
const MB = 1024 * KB;

export type UpstreamName = 'hub' | 'gcr';

export interface CatalogImage {
  readonly upstream: UpstreamName;
  readonly repo: string;
  readonly tag: string;
  readonly image: Image;
}

const osRelease = (name: string): LayerFile => ({ path: 'etc/os-release', text: `NAME="${name}"\nID=${name.toLowerCase()}\nVERSION_ID=1\n` });
const binary = (path: string, size: number): LayerFile => ({ path, randomBytes: size, seed: path + size });

/** A layer of a few files: a text file, `binaries` random-content files summing to `size`, a symlink. */
function layer(name: string, size: number, binaries = 3) {
  const files: LayerFile[] = [osRelease(name)];
  for (let i = 0; i < binaries; i++) files.push(binary(`usr/bin/${name}-${i}`, Math.floor(size / binaries)));
  files.push({ path: `usr/local/bin/${name}`, symlinkTo: `/usr/bin/${name}-0` });
  return buildLayer(files);
}

export function buildCatalog(): CatalogImage[] {
  const alpineBase = layer('alpine', 768 * KB);
  const amd64 = { architecture: 'amd64', os: 'linux' };
  const arm64 = { architecture: 'arm64', os: 'linux', variant: 'v8' };

  const nginxBase = layer('nginx-base', 1536 * KB);
  const nginx = (platform: typeof arm64 | typeof amd64, arch: string): ImageManifest =>
    buildImage({ format: 'docker', platform, layers: [nginxBase, layer(`nginx-${arch}`, 384 * KB), layer(`nginx-conf-${arch}`, 4 * KB, 1)], cmd: ['nginx', '-g', 'daemon off;'] });

  const redis = (platform: typeof arm64 | typeof amd64, arch: string): ImageManifest =>
    buildImage({ format: 'oci', platform, layers: [alpineBase, layer(`redis-${arch}`, 512 * KB)], cmd: ['redis-server'] });
  const redisAmd64 = redis(amd64, 'amd64');
  const redisArm64 = redis(arm64, 'arm64');

  const busyboxLayers = Array.from({ length: 20 }, (_, i) => layer(`busybox-${String(i + 1).padStart(2, '0')}`, (2 + 2 * i) * KB, 1));

  return [
    { upstream: 'hub', repo: 'library/alpine', tag: '3.20', image: buildImage({ format: 'docker', platform: amd64, layers: [alpineBase] }) },
    { upstream: 'hub', repo: 'library/nginx', tag: '1.27', image: buildIndex('docker', [nginx(amd64, 'amd64'), nginx(arm64, 'arm64')]) },
    {
      upstream: 'hub',
      repo: 'library/redis',
      tag: '7.2',
      image: buildIndex('oci', [redisAmd64, redisArm64, buildAttestation(redisAmd64), buildAttestation(redisArm64)]),
    },
    { upstream: 'hub', repo: 'library/busybox', tag: 'latest', image: buildImage({ format: 'docker', platform: amd64, layers: busyboxLayers }) },
    {
      upstream: 'hub',
      repo: 'myorg/app',
      tag: 'v1',
      image: buildImage({
        format: 'oci',
        platform: amd64,
        layers: [layer('app-base', 2 * MB), layer('app-runtime', 1 * MB), layer('app-v1', 256 * KB)],
        cmd: ['/usr/bin/app'],
        annotations: { 'org.opencontainers.image.version': 'v1' },
      }),
    },
    { upstream: 'hub', repo: 'testuser/private', tag: 'v1', image: buildImage({ format: 'docker', platform: amd64, layers: [layer('private', 64 * KB)] }) },
    { upstream: 'gcr', repo: 'distroless/static', tag: 'nonroot', image: buildImage({ format: 'oci', platform: amd64, layers: [layer('distroless', 256 * KB)], cmd: [] }) },
    { upstream: 'gcr', repo: 'google-containers/pause', tag: '3.9', image: buildImage({ format: 'docker', platform: amd64, layers: [layer('pause', 32 * KB, 1)], cmd: ['/pause'] }) },
  ];
}

export function findImage(catalog: CatalogImage[], repo: string, tag: string): CatalogImage {
  const found = catalog.find((entry) => entry.repo === repo && entry.tag === tag);
  if (!found) throw new Error(`${repo}:${tag} is not in the interop catalog`);
  return found;
}
