/**
 * Just enough of a registry client to seed images: the bearer-token challenge (distribution-spec
 * "token authentication", answered by the realm named in WWW-Authenticate), monolithic blob
 * upload (POST then PUT with ?digest=), and manifest PUT with the exact bytes so the digest the
 * registry reports is the one we computed.
 */
import { blobsOf, type Image, type ImageManifest } from './images.js';

export interface Credentials {
  username: string;
  password: string;
}

const REQUEST_TIMEOUT_MS = 30_000;

export class PushClient {
  readonly #tokens = new Map<string, string>();

  constructor(
    readonly baseUrl: string,
    readonly credentials?: Credentials,
  ) {}

  async pushImage(repo: string, tag: string, image: Image): Promise<void> {
    for (const blob of blobsOf(image)) await this.#pushBlob(repo, blob.digest, blob.bytes);
    const children: ImageManifest[] = image.kind === 'index' ? image.manifests : [];
    for (const child of children) await this.#pushManifest(repo, child.digest, child);
    await this.#pushManifest(repo, tag, image);
  }

  async #pushBlob(repo: string, digest: string, bytes: Buffer): Promise<void> {
    const start = await this.#send(repo, 'POST', `/v2/${repo}/blobs/uploads/`, {});
    if (start.status !== 202) throw new Error(`POST upload ${repo}: ${start.status} ${await start.text()}`);
    const location = new URL(start.headers.get('location') ?? '', this.baseUrl);
    location.searchParams.set('digest', digest);
    const done = await this.#send(repo, 'PUT', location.pathname + location.search, { body: bytes, contentType: 'application/octet-stream' });
    if (done.status !== 201) throw new Error(`PUT blob ${repo}@${digest}: ${done.status} ${await done.text()}`);
  }

  async #pushManifest(repo: string, reference: string, manifest: Image | ImageManifest): Promise<void> {
    const response = await this.#send(repo, 'PUT', `/v2/${repo}/manifests/${reference}`, { body: manifest.bytes, contentType: manifest.mediaType });
    const digest = response.headers.get('docker-content-digest');
    if (response.status !== 201) throw new Error(`PUT manifest ${repo}:${reference}: ${response.status} ${await response.text()}`);
    if (digest !== manifest.digest) throw new Error(`PUT manifest ${repo}:${reference}: registry says ${digest}, expected ${manifest.digest}`);
  }

  /** Sends with a cached token; on 401 fetches one for the challenged scope and retries once. */
  async #send(repo: string, method: string, path: string, options: { body?: Buffer; contentType?: string }): Promise<Response> {
    const attempt = (token: string | undefined) =>
      fetch(new URL(path, this.baseUrl), {
        method,
        redirect: 'manual',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(options.contentType ? { 'content-type': options.contentType } : {}) },
        ...(options.body ? { body: options.body } : {}),
      });
    const first = await attempt(this.#tokens.get(repo));
    if (first.status !== 401) return first;
    await first.arrayBuffer();
    const token = await this.#fetchToken(first.headers.get('www-authenticate') ?? '', repo);
    this.#tokens.set(repo, token);
    return attempt(token);
  }

  async #fetchToken(challenge: string, repo: string): Promise<string> {
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!/^bearer /i.test(challenge) || !params.realm) throw new Error(`unsupported challenge: ${challenge}`);
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', `repository:${repo}:pull,push`);
    const basic = this.credentials ? Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64') : undefined;
    const response = await fetch(url, { headers: basic ? { authorization: `Basic ${basic}` } : {}, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = (await response.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (response.status !== 200 || !token) throw new Error(`token request ${url}: ${response.status}`);
    return token;
  }
}
