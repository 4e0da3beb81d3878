/**
 * The client side of an OCI artifact with a `subject`, as ORAS does it (distribution-spec 1.1
 * "Pushing Manifests with Subject" and "Backwards Compatibility"): push the blobs and the
 * manifest; if the registry answers without `OCI-Subject`, maintain the referrers tag
 * `<alg>-<ref>` (an image index) by hand; list referrers through the API, or through that tag
 * when the API answers 404. Basic credentials go with every request (registry:2 and the mirror
 * both use Basic auth).
 */
import { createHash } from 'node:crypto';
import type { Credentials } from './push-targets.js';

const TIMEOUT_MS = 30_000;
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export interface ReferrersListing {
  /** 'api': GET /v2/<name>/referrers/<digest>; 'tag-schema': the client-maintained fallback tag. */
  via: 'api' | 'tag-schema';
  /** The OCI-Filters-Applied header of the API answer. */
  filtersApplied?: string;
  manifests: Descriptor[];
}

export class OciClient {
  constructor(
    readonly baseUrl: string,
    readonly credentials?: Credentials,
  ) {}

  async send(method: string, path: string, options: { body?: Buffer; contentType?: string; accept?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.credentials) headers.authorization = `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
    if (options.contentType) headers['content-type'] = options.contentType;
    if (options.accept) headers.accept = options.accept;
    return fetch(new URL(path, this.baseUrl), { method, headers, redirect: 'manual', signal: AbortSignal.timeout(TIMEOUT_MS), ...(options.body ? { body: options.body } : {}) });
  }

  /** Monolithic upload: POST, then PUT <location>?digest= with the bytes (distribution-spec "POST then PUT"). */
  async pushBlob(repository: string, bytes: Buffer): Promise<string> {
    const digest = sha256(bytes);
    const started = await this.send('POST', `/v2/${repository}/blobs/uploads/`);
    await expectStatus(started, 202, `POST /v2/${repository}/blobs/uploads/`);
    await started.arrayBuffer();
    const location = new URL(started.headers.get('location') ?? '', this.baseUrl);
    location.searchParams.set('digest', digest);
    const done = await this.send('PUT', location.pathname + location.search, { body: bytes, contentType: 'application/octet-stream' });
    await expectStatus(done, 201, `PUT blob ${digest}`);
    await done.arrayBuffer();
    return digest;
  }

  /** PUT of the exact bytes; returns the answer's headers that matter. */
  async pushManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<{ digest: string; ociSubject: string | null }> {
    const response = await this.send('PUT', `/v2/${repository}/manifests/${reference}`, { body: bytes, contentType: mediaType });
    await expectStatus(response, 201, `PUT manifest ${repository}:${reference}`);
    await response.arrayBuffer();
    return { digest: response.headers.get('docker-content-digest') ?? '', ociSubject: response.headers.get('oci-subject') };
  }

  /**
   * Pushes an artifact manifest referring to `subject`; without OCI-Subject in the answer,
   * adds its descriptor to the referrers tag index, once (the spec's client fallback).
   */
  async pushReferrer(repository: string, manifest: Buffer, mediaType: string, subject: string): Promise<{ digest: string; ociSubject: string | null }> {
    const pushed = await this.pushManifest(repository, sha256(manifest), manifest, mediaType);
    if (pushed.ociSubject !== null) return pushed;
    const parsed = JSON.parse(manifest.toString()) as { artifactType?: string; config?: { mediaType: string }; annotations?: Record<string, string> };
    const descriptor: Descriptor = { mediaType, digest: sha256(manifest), size: manifest.length, artifactType: parsed.artifactType || parsed.config?.mediaType || '' };
    if (parsed.annotations) descriptor.annotations = parsed.annotations;
    const existing = (await this.#referrersTag(repository, subject)) ?? [];
    if (!existing.some((entry) => entry.digest === descriptor.digest)) {
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...existing, descriptor] }));
      await this.pushManifest(repository, referrersTag(subject), index, OCI_INDEX);
    }
    return pushed;
  }

  /** The referrers API; on 404, the referrers tag (filtered here, as a client must). */
  async referrers(repository: string, subject: string, artifactType?: string): Promise<ReferrersListing> {
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const response = await this.send('GET', `/v2/${repository}/referrers/${subject}${query}`, { accept: OCI_INDEX });
    if (response.status === 200) {
      const filtersApplied = response.headers.get('oci-filters-applied') ?? undefined;
      const manifests = ((await response.json()) as { manifests: Descriptor[] }).manifests;
      return { via: 'api', ...(filtersApplied ? { filtersApplied } : {}), manifests };
    }
    await expectStatus(response, 404, `GET referrers of ${subject}`);
    await response.arrayBuffer();
    const listed = (await this.#referrersTag(repository, subject)) ?? [];
    return { via: 'tag-schema', manifests: artifactType ? listed.filter((entry) => entry.artifactType === artifactType) : listed };
  }

  async #referrersTag(repository: string, subject: string): Promise<Descriptor[] | undefined> {
    const response = await this.send('GET', `/v2/${repository}/manifests/${referrersTag(subject)}`, { accept: OCI_INDEX });
    if (response.status === 404) {
      await response.arrayBuffer();
      return undefined;
    }
    await expectStatus(response, 200, `GET referrers tag of ${subject}`);
    return ((await response.json()) as { manifests: Descriptor[] }).manifests;
  }
}

/** `<alg>-<ref>` (distribution-spec "Referrers Tag Schema"). */
export function referrersTag(subject: string): string {
  const [algorithm, encoded] = subject.split(':');
  return `${algorithm}-${encoded!.slice(0, 64)}`;
}

export function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function expectStatus(response: Response, status: number, what: string): Promise<void> {
  if (response.status === status) return;
  throw new Error(`${what}: expected ${status}, got ${response.status} ${(await response.text()).slice(0, 500)}`);
}
