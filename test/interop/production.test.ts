/**
 * Issue 7 "Done when", against real clients and real upstreams:
 *   - a mirror with TLS (private CA, certificate for 127.0.0.1), an htpasswd file and upstream
 *     credentials: /v2/ challenges with Basic, skopeo (`--src-creds`, `--src-cert-dir`) copies
 *     alpine, nginx and the private testuser/private through it; containerd (hosts.toml `ca`,
 *     `ctr --user`) pulls; dockerd's `docker login` + `registry-mirrors` is observed and reported;
 *   - /healthz, /readyz and /metrics after a cold and a warm pull;
 *   - its whole output, at log level info, is JSON lines without a password or a token;
 *   - an open mirror (no htpasswd) started on a copy of that cache, holding the private image:
 *     anonymous clients get 404 for the private repository and its blobs, under any name, while
 *     library/alpine still pulls.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstreams, type Upstreams } from './support/upstreams.js';
import { startMirror, type RunningMirror } from './support/mirror.js';
import { findImage, type CatalogImage } from './support/catalog.js';
import { Skopeo, verifiedLayoutBlobs } from './support/skopeo.js';
import { Tripwire } from './support/tripwire.js';
import { Containerd } from './support/containerd.js';
import { Dockerd, DockerdUnavailableError } from './support/dockerd.js';
import { platformManifest, type ImageManifest } from './support/images.js';
import { sha256Digest } from './support/layers.js';
import { HUB_PASSWORD, HUB_USER } from './support/token-server.js';
import { basicAuthorization, makeTlsFiles, writeHtpasswd, type TlsFiles } from './support/production-setup.js';
import { logLines, logMark, metricSum, requestsSince } from './support/mirror-log.js';

const CLIENT_USER = 'alice';
const CLIENT_PASSWORD = 'mirror-pass-5e1d';
const HOST_ARCH = 'amd64';
const LOG_DEADLINE_MS = 15_000;

let root: string;
let tripwire: Tripwire | undefined;
let upstreams: Upstreams | undefined;
let tls: TlsFiles;
let secured: RunningMirror | undefined;
let open: RunningMirror | undefined;
let trusting: Agent;
let skopeo: Skopeo;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'registry-mirror-production-'));
  tripwire = await Tripwire.start();
  upstreams = await startUpstreams(join(root, 'upstreams'));
  tls = makeTlsFiles(join(root, 'tls'));
  const htpasswd = writeHtpasswd(join(root, 'htpasswd'), CLIENT_USER, CLIENT_PASSWORD);
  secured = await startMirror(join(root, 'secured'), upstreams, { tls: { cert: tls.certFile, key: tls.keyFile }, auth: { htpasswd }, log: { level: 'info' } });
  trusting = new Agent({ connect: { ca: readFileSync(tls.caFile) } });
  skopeo = await Skopeo.create(join(root, 'skopeo'), { deadProxyPort: tripwire.port });
});

afterAll(async () => {
  await open?.stop();
  await secured?.stop();
  await upstreams?.stop();
  await tripwire?.close();
  await trusting?.close();
  if (root && !process.env.INTEROP_KEEP) rmSync(root, { recursive: true, force: true });
});

function env() {
  if (!upstreams || !secured || !tripwire) throw new Error('interop environment did not start');
  return { upstreams, secured, tripwire, host: new URL(secured.url).host };
}

const image = (repo: string, tag: string): CatalogImage => findImage(env().upstreams.catalog, repo, tag);
const privateImage = () => image('testuser/private', 'v1').image as ImageManifest;
const clientCredentials = basicAuthorization(CLIENT_USER, CLIENT_PASSWORD);
const TLS_ARGS = () => ['--src-creds', `${CLIENT_USER}:${CLIENT_PASSWORD}`, '--src-cert-dir', tls.caDir];

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const response = await request(url, { method, headers, dispatcher: trusting, signal: AbortSignal.timeout(30_000) });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers, body, code: errorCode(body) };
}

function errorCode(body: Buffer): string | undefined {
  try {
    return (JSON.parse(body.toString()) as { errors?: Array<{ code?: string }> }).errors?.[0]?.code;
  } catch {
    return undefined;
  }
}

/** skopeo copy --all with credentials and the CA from the secured mirror; returns the layout's verified blobs. */
async function copyFromSecured(repo: string, tag: string, pass: string): Promise<Set<string>> {
  const layout = join(root, pass, repo);
  mkdirSync(layout, { recursive: true });
  await skopeo.run(['copy', '--all', ...TLS_ARGS(), `docker://${env().host}/${repo}:${tag}`, `oci:${layout}:${tag}`]);
  return verifiedLayoutBlobs(layout);
}

async function securedManifestDigest(repo: string, tag: string): Promise<string> {
  const raw = await skopeo.run(['inspect', '--raw', '--creds', `${CLIENT_USER}:${CLIENT_PASSWORD}`, '--cert-dir', tls.caDir, `docker://${env().host}/${repo}:${tag}`]);
  return sha256Digest(Buffer.from(raw));
}

const sendSentinel = (url: string) => get(url);

/** Layers keep their digests when skopeo converts Docker manifests to OCI. */
function expectLayers(entry: CatalogImage, blobs: Set<string>): void {
  const manifests = entry.image.kind === 'index' ? entry.image.manifests : [entry.image];
  const layers = manifests.flatMap((manifest) => manifest.blobs.slice(1).map((blob) => blob.digest));
  expect(layers.filter((digest) => !blobs.has(digest)), `${entry.repo}: layers missing from the layout`).toEqual([]);
}

describe('a mirror with TLS, htpasswd and upstream credentials', () => {
  it('/v2/ answers 401 with a Basic challenge without or with wrong credentials, 200 with the right ones', async () => {
    const base = `${env().secured.url}/v2/`;
    const attempts: Array<Record<string, string>> = [{}, { authorization: basicAuthorization(CLIENT_USER, 'wrong') }, { authorization: basicAuthorization('mallory', CLIENT_PASSWORD) }];
    for (const headers of attempts) {
      const refused = await get(base, headers);
      expect(refused.status).toBe(401);
      expect(refused.headers['www-authenticate']).toMatch(/^Basic realm="registry-mirror"/);
      expect(refused.code).toBe('UNAUTHORIZED');
    }
    const accepted = await get(base, { authorization: clientCredentials });
    expect(accepted.status).toBe(200);
    expect(accepted.headers['docker-distribution-api-version']).toBe('registry/2.0');
    // The certificate is checked: a client without the private CA cannot connect at all.
    await expect(request(base, { signal: AbortSignal.timeout(10_000) })).rejects.toThrow(/certificate/i);
  });

  it('/healthz and /readyz answer 200 without credentials; /metrics and the status page ask for them', async () => {
    expect((await get(`${env().secured.url}/healthz`)).status).toBe(200);
    expect((await get(`${env().secured.url}/readyz`)).status).toBe(200);
    expect((await get(`${env().secured.url}/metrics`)).status).toBe(401);
    expect((await get(`${env().secured.url}/`)).status).toBe(401);
  });

  it('skopeo without credentials is refused', async () => {
    await expect(skopeo.run(['inspect', '--raw', '--cert-dir', tls.caDir, `docker://${env().host}/library/alpine:3.20`])).rejects.toThrow(/unauthorized|authentication required/i);
  });

  it('skopeo copy --all with credentials copies alpine:3.20 and nginx:1.27 (cold, then warm from the cache alone)', async () => {
    const { hub, cdn, token } = env().upstreams;
    for (const pass of ['cold', 'warm']) {
      const marks = { hub: hub.proxy.requests.mark(), cdn: cdn.requests.mark(), token: token.requests.mark() };
      for (const entry of [image('library/alpine', '3.20'), image('library/nginx', '1.27')]) {
        expectLayers(entry, await copyFromSecured(entry.repo, entry.tag, pass));
        expect(await securedManifestDigest(entry.repo, entry.tag), `${pass} ${entry.repo}`).toBe(entry.image.digest);
      }
      if (pass === 'warm') {
        expect(hub.proxy.requests.linesSince(marks.hub), 'requests at hub').toEqual([]);
        expect(cdn.requests.linesSince(marks.cdn), 'requests at the CDN').toEqual([]);
        expect(token.requests.linesSince(marks.token), 'requests at the token server').toEqual([]);
      }
    }
  });

  it('skopeo with credentials pulls the private testuser/private:v1', async () => {
    const entry = image('testuser/private', 'v1');
    expectLayers(entry, await copyFromSecured(entry.repo, entry.tag, 'private'));
    expect(await securedManifestDigest(entry.repo, entry.tag)).toBe(entry.image.digest);
  });

  it('containerd with hosts.toml `ca` and `ctr --user` pulls alpine:3.20', async () => {
    const { host, tripwire: wire } = env();
    const wireMark = wire.connections;
    const hostsDir = join(root, 'containerd-hosts');
    mkdirSync(join(hostsDir, 'docker.io'), { recursive: true });
    writeFileSync(join(hostsDir, 'docker.io', 'hosts.toml'), [`server = "${wire.url}"`, '', `[host."https://${host}"]`, '  capabilities = ["pull", "resolve"]', `  ca = "${tls.caFile}"`, ''].join('\n'));
    const containerd = await Containerd.start(join(root, 'containerd'), wire);
    try {
      const ref = 'docker.io/library/alpine:3.20';
      await containerd.ctr(['--namespace', 'prod', 'image', 'pull', '--hosts-dir', hostsDir, '--snapshotter', 'native', '--user', `${CLIENT_USER}:${CLIENT_PASSWORD}`, ref]);
      expect((await containerd.image('prod', ref)).digest).toBe(image('library/alpine', '3.20').image.digest);
      expect(wire.connections - wireMark, 'containerd fell back past the mirror').toBe(0);
    } finally {
      await containerd.stop();
    }
  });
});

describe('dockerd: docker login to the mirror, then a pull through registry-mirrors', () => {
  it('dockerd never sends the mirror the credentials of docker login; it sends those it holds for docker.io', async ({ skip }) => {
    const { host, tripwire: wire, secured: mirror } = env();
    const etcDocker = join(root, 'etc-docker');
    mkdirSync(join(etcDocker, 'certs.d', host), { recursive: true });
    cpSync(tls.caFile, join(etcDocker, 'certs.d', host, 'ca.crt'));
    const dockerd = await Dockerd.start(join(root, 'dockerd'), wire, { 'registry-mirrors': [`https://${host}`] }, { etcDocker }).catch((error: unknown) => {
      if (error instanceof DockerdUnavailableError) skip(error.message);
      throw error;
    });
    try {
      await dockerd.docker(['login', host, '--username', CLIENT_USER, '--password', CLIENT_PASSWORD]);
      // Logged in to the mirror: the pull still meets the mirror's challenge without credentials.
      let mark = await logMark(mirror, sendSentinel);
      let wireMark = wire.connections;
      await expect(dockerd.pull('alpine:3.20')).rejects.toThrow(/registry-1\.docker\.io/);
      expect(await requestsSince(mirror, mark, sendSentinel), 'what the mirror saw').toEqual(['GET /v2/ 401']);
      expect(readFileSync(join(dockerd.dir, 'dockerd.log'), 'utf8')).toMatch(/\/v2\/library\/alpine\/manifests\/3\.20\\?": no basic auth credentials/);
      expect(wire.connections - wireMark, 'dockerd fell back to "Docker Hub" (the tripwire)').toBeGreaterThan(0);

      // dockerd resolves credentials by the image's registry: what it holds for docker.io is
      // what it answers the mirror's Basic challenge with.
      const configFile = join(dockerd.dir, 'client', 'config.json');
      const config = JSON.parse(readFileSync(configFile, 'utf8')) as { auths: Record<string, { auth: string }> };
      config.auths['https://index.docker.io/v1/'] = { auth: clientCredentials.slice('Basic '.length) };
      writeFileSync(configFile, JSON.stringify(config));
      mark = await logMark(mirror, sendSentinel);
      wireMark = wire.connections;
      await dockerd.pull('alpine:3.20');
      expect(await dockerd.repoDigests('alpine:3.20')).toEqual([`alpine@${image('library/alpine', '3.20').image.digest}`]);
      const seen = await requestsSince(mirror, mark, sendSentinel);
      expect(seen.filter((line) => / 40[13]$/.test(line) && !line.startsWith('GET /v2/ ')), 'refused requests other than the challenge').toEqual([]);
      expect(seen).toContain('HEAD /v2/library/alpine/manifests/3.20 200');
      expect(wire.connections - wireMark, 'connections to the tripwire').toBe(0);
    } finally {
      await dockerd.stop();
    }
  });
});

describe('operations after a cold and a warm pull', () => {
  it('/metrics shows cache hits and misses and typed upstream request metrics', async () => {
    const metrics = await get(`${env().secured.url}/metrics`, { authorization: clientCredentials });
    expect(metrics.status).toBe(200);
    const text = metrics.body.toString();
    expect(metricSum(text, 'registry_mirror_cache_hits_total')).toBeGreaterThan(0);
    expect(metricSum(text, 'registry_mirror_cache_misses_total')).toBeGreaterThan(0);
    expect(text).toContain('# TYPE registry_mirror_upstream_requests_total counter');
    expect(metricSum(text, 'registry_mirror_upstream_requests_total')).toBeGreaterThan(0);
    expect(text).toContain('# TYPE registry_mirror_upstream_request_duration_seconds histogram');
  });

  it('every line the mirror wrote is JSON, and no password, Basic credential or issued token is among them', async () => {
    const mirror = env().secured;
    await mirror.stop();
    const deadline = Date.now() + LOG_DEADLINE_MS;
    // The copy of the output into the log file is asynchronous: wait for the last line.
    while (!logLines(mirror).some((line) => line.includes('"msg":"stopped"')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const lines = logLines(mirror);
    const entries = lines.map((line) => {
      try {
        return JSON.parse(line) as { msg?: string; cache?: string; level?: number };
      } catch {
        throw new Error(`not a JSON line: ${line}`);
      }
    });
    expect(entries.map((entry) => entry.msg)).toContain('stopped');
    const requests = entries.filter((entry) => entry.msg === 'request');
    expect(requests.length).toBeGreaterThan(0);
    expect(new Set(requests.map((entry) => entry.cache)).size, 'cache results logged').toBeGreaterThan(1);
    const tokens = env().upstreams.token.issuedTokens;
    expect(tokens.length, 'tokens issued').toBeGreaterThan(0);
    const secrets = [HUB_PASSWORD, basicAuthorization(HUB_USER, HUB_PASSWORD).slice(6), CLIENT_PASSWORD, clientCredentials.slice(6), ...tokens, ...tokens.map((t) => t.split('.')[2]!)];
    const output = lines.join('\n');
    expect(secrets.filter((secret) => output.includes(secret))).toEqual([]);
  });
});

describe('an open mirror (no htpasswd) on a cache that holds the private image', () => {
  beforeAll(async () => {
    const { upstreams: ups, secured: mirror } = env();
    await mirror.stop();
    const cacheDir = join(root, 'open', 'cache');
    cpSync(mirror.cacheDir, cacheDir, { recursive: true });
    open = await startMirror(join(root, 'open'), ups, { cache: { dir: cacheDir, maxBytes: 10 * 1024 ** 3 } });
  });

  it('answers 404 for the private manifest and its blobs, under its own name and under library/alpine', async () => {
    if (!open) throw new Error('open mirror did not start');
    const priv = privateImage();
    // The copied cache holds the private image, so only the access policy stands between it and anonymous clients.
    const cached = (digest: string, dir: string) => existsSync(join(root, 'open', 'cache', dir, 'sha256', digest.slice(7, 9), digest.slice(7)));
    // Manifests and blobs alike live under blobs/ (storage/fs/fs-layout.ts).
    expect([cached(priv.digest, 'blobs'), ...priv.blobs.map((blob) => cached(blob.digest, 'blobs'))]).toEqual([true, true, true]);
    const tokenMark = env().upstreams.token.requests.mark();
    const answers: Record<string, [number, string | undefined]> = {};
    const paths = [
      '/v2/testuser/private/manifests/v1',
      `/v2/testuser/private/manifests/${priv.digest}`,
      ...priv.blobs.map((blob) => `/v2/testuser/private/blobs/${blob.digest}`),
      ...priv.blobs.map((blob) => `/v2/library/alpine/blobs/${blob.digest}`),
    ];
    for (const path of paths) {
      for (const method of ['GET', 'HEAD'] as const) {
        const answer = await get(`${open.url}${path}`, {}, method);
        answers[`${method} ${path}`] = [answer.status, answer.code];
      }
    }
    const expected = Object.fromEntries(paths.flatMap((path) => {
      const code = path.startsWith('/v2/testuser/') ? 'NAME_UNKNOWN' : 'BLOB_UNKNOWN';
      return [[`GET ${path}`, [404, code]], [`HEAD ${path}`, [404, undefined]]];
    }));
    expect(answers).toEqual(expected);
    // The mirror asked as an anonymous client: its own credentials never went to the token server.
    expect(env().upstreams.token.requests.since(tokenMark).map((r) => r.authorization).filter((kind) => kind !== 'none')).toEqual([]);
  });

  it('skopeo without credentials still copies library/alpine:3.20, and cannot copy testuser/private:v1', async () => {
    if (!open) throw new Error('open mirror did not start');
    const host = new URL(open.url).host;
    const alpine = image('library/alpine', '3.20');
    const layout = join(root, 'open-pull', alpine.repo);
    await skopeo.copyToOci(host, alpine.repo, alpine.tag, layout);
    expectLayers(alpine, verifiedLayoutBlobs(layout));
    expect(await skopeo.rawManifestDigest(`${host}/${alpine.repo}:${alpine.tag}`)).toBe(alpine.image.digest);
    expect(platformManifest(alpine.image, HOST_ARCH).digest).toBe(alpine.image.digest);
    await expect(skopeo.copyToOci(host, 'testuser/private', 'v1', join(root, 'open-pull', 'testuser/private'))).rejects.toThrow(/manifest unknown|name unknown|not found/i);
  });
});
