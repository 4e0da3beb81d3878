/**
 * Phase 1 of the attack run: every hostile upstream answer of issue 12 against the real build.
 * Upstreams: `docker.io` is a fake registry with injected faults (chunked bodies, lying lengths,
 * corrupt, cut, reset, slow and stalled bodies, a 429 with a huge Retry-After); `evil.io` a
 * hand-written server that redirects to a counting sink on loopback (not in redirectHosts) and
 * to a link-local address, and answers manifests with bad content types. After every answer:
 * the process still runs and answers /healthz.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import type { Fault } from '../helpers/fake-registry-wire.js';
import { answer, startHostile, type HostileServer } from '../helpers/hostile-upstream.js';
import { makeImage, pushImage, type TestBlob } from '../helpers/test-images.js';
import { startServer, type ServerProcess } from '../bench/mirror-process.js';
import { ACCEPT, MAIN, MANIFEST_TYPES, type Outcome, type Report, sha256Of, tryGet, writeConfig } from './attack-support.js';

const CACHED_LAYERS = 3;
const LAYER_SIZE = 100 * 1024;
/** Room for the cached layers and a little more: a reservation of the announced size would evict them. */
const CACHE_BYTES = CACHED_LAYERS * LAYER_SIZE + 150 * 1024;
const MAX_RETRY_AFTER_S = 6 * 3600;

export async function hostileAnswers(report: Report, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const fake = await startFakeRegistry();
  const sink = await startHostile((_req, res) => answer(res, 200, { 'content-type': 'application/json' }, '{"AccessKeyId":"SECRET"}'));
  const evil = await startHostile();
  const config = writeConfig(dir, 'hostile', {
    cache: { dir: path.join(dir, 'cache'), maxBytes: CACHE_BYTES },
    fetch: { idleTimeoutSeconds: 2, headersTimeoutSeconds: 5 },
    upstreams: { 'docker.io': { url: fake.url }, 'evil.io': { url: evil.url } },
  });
  const mirror = await startServer(MAIN, config);
  const served: Outcome[] = [];
  try {
    // The lying length first: the faults' blobs after it fill the budget, and the LRU may then evict.
    const cached = await fillCache(report, mirror, fake);
    await lyingLength(report, mirror, fake, cached);
    await blobFaults(report, mirror, fake, served);
    await redirects(report, mirror, evil, sink);
    await contentTypes(report, mirror, evil, served);
    await retryAfter(report, mirror, fake);
    const badTypes = served.filter((entry) => entry.status === 200 && entry.headers['content-type'] !== undefined && isManifestRequest(entry) && !MANIFEST_TYPES.has(String(entry.headers['content-type'])));
    report.check('no manifest served with a non-manifest content type', badTypes.length === 0, `${served.filter(isManifestRequest).length} manifest answers looked at`);
    report.check('the process survived every hostile answer', mirror.alive() && (await tryGet(`${mirror.url}/healthz`)).status === 200);
  } finally {
    await mirror.stop();
    await Promise.all([fake.close(), sink.close(), evil.close()]);
  }
}

const manifestRequests = new WeakSet<Outcome>();
const isManifestRequest = (outcome: Outcome) => manifestRequests.has(outcome);

async function alive(report: Report, mirror: ServerProcess, after: string): Promise<void> {
  const health = await tryGet(`${mirror.url}/healthz`);
  report.check(`alive after ${after}`, mirror.alive() && health.status === 200, health.error ?? `healthz ${health.status}`);
}

/** Three layers cached and counted: what a lying length must not evict. */
async function fillCache(report: Report, mirror: ServerProcess, fake: FakeRegistry): Promise<TestBlob[]> {
  const image = makeImage({ layers: Array(CACHED_LAYERS).fill(LAYER_SIZE), seed: 'attack-cached' });
  pushImage(fake, 'library/cached', 'v1', image);
  for (const layer of image.layers) await tryGet(`${mirror.url}/v2/library/cached/blobs/${layer.digest}`);
  report.fact('cached before the faults', `${image.layers.length} layers of ${LAYER_SIZE} bytes (cache.maxBytes ${CACHE_BYTES})`);
  return image.layers;
}

async function blobFaults(report: Report, mirror: ServerProcess, fake: FakeRegistry, served: Outcome[]): Promise<void> {
  const cases: Array<[string, Fault, boolean]> = [
    ['a chunked body (no Content-Length) with the right bytes', { chunked: true }, true],
    ['a chunked body with a flipped byte', { chunked: true, mode: 'corrupt' }, false],
    ['a body cut short (Content-Length kept)', { mode: 'truncate' }, false],
    ['a connection reset mid-body', { mode: 'reset' }, false],
    ['a slow body (32 KiB/s)', { mode: 'slow', bytesPerSecond: 32 * 1024 }, true],
    ['a stalled body (head, then silence)', { mode: 'hang' }, false],
  ];
  for (const [index, [what, fault, complete]] of cases.entries()) {
    const image = makeImage({ layers: [48 * 1024 + index], seed: `attack-fault-${index}` });
    pushImage(fake, `library/fault${index}`, 'v1', image);
    fake.setFault('blob', { ...fault, times: 1 });
    const layer = image.layers[0]!;
    const outcome = await tryGet(`${mirror.url}/v2/library/fault${index}/blobs/${layer.digest}`);
    served.push(outcome);
    const whole = outcome.status === 200 && !outcome.error && (await sha256Of(outcome.body)) === layer.digest;
    report.check(`${what}: ${complete ? 'served whole and verified' : 'never served as a complete response'}`, whole === complete, outcome.error ?? `status ${outcome.status}, ${outcome.body.length} of ${layer.size} bytes`);
    fake.setFault('blob', null);
    if (!complete) {
      // The failed fill cleans up as its response ends; a moment later nothing of it may remain.
      await new Promise((resolve) => setTimeout(resolve, 250));
      const again = await tryGet(`${mirror.url}/v2/library/fault${index}/blobs/${layer.digest}`);
      report.check(`${what}: nothing partial kept (the next GET is whole)`, again.status === 200 && (await sha256Of(again.body)) === layer.digest, again.error ?? `status ${again.status}, ${again.body.length} bytes`);
    }
    await alive(report, mirror, what);
  }
}

async function lyingLength(report: Report, mirror: ServerProcess, fake: FakeRegistry, cached: TestBlob[]): Promise<void> {
  const image = makeImage({ layers: [10], seed: 'attack-lying' });
  pushImage(fake, 'library/lying', 'v1', image);
  fake.setFault('blob', { announceLength: 180 * 1024 * 1024, times: 1 });
  const outcome = await tryGet(`${mirror.url}/v2/library/lying/blobs/${image.layers[0]!.digest}`);
  report.fact('answer to a 10-byte body announced as 180 MiB', outcome.error ?? `status ${outcome.status}`);
  // Every cached layer must still be served without the upstream: make the upstream fail to tell.
  fake.setFault('blob', { status: 500 });
  const before = fake.requests.length;
  let kept = 0;
  for (const layer of cached) {
    const again = await tryGet(`${mirror.url}/v2/library/cached/blobs/${layer.digest}`);
    if (again.status === 200 && (await sha256Of(again.body)) === layer.digest) kept += 1;
  }
  fake.setFault('blob', null);
  report.check('no cached blob evicted by a lying length', kept === cached.length && fake.requests.filter((entry, i) => i >= before && entry.path.includes('/blobs/')).length === 0, `${kept} of ${cached.length} still served from the cache`);
  await alive(report, mirror, 'a lying length');
}

async function redirects(report: Report, mirror: ServerProcess, evil: HostileServer, sink: HostileServer): Promise<void> {
  const targets: Array<[string, string]> = [[`loopback ${sink.host}`, `${sink.url}/latest/meta-data`], ['link-local 169.254.169.254', 'http://169.254.169.254/latest/meta-data']];
  for (const [what, location] of targets) {
    evil.handle((req, res) => answer(res, req.url?.includes('/blobs/') ? 307 : 302, { location }));
    const manifest = await tryGet(`${mirror.url}/v2/evil.io/app/manifests/latest`, { accept: ACCEPT });
    const blob = await tryGet(`${mirror.url}/v2/evil.io/app/blobs/sha256:${'c'.repeat(64)}`);
    const leaked = [manifest, blob].some((entry) => entry.body.includes('SECRET'));
    report.check(`redirects to ${what} refused (502 naming redirectHosts), nothing leaked`, manifest.status === 502 && blob.status === 502 && !leaked && manifest.body.toString().includes('redirectHosts'), `manifest ${manifest.status}, blob ${blob.status}`);
    await alive(report, mirror, `redirects to ${what}`);
  }
  report.check('no connection to the loopback sink that is not allowed', sink.connections === 0, `${sink.connections} connections`);
}

async function contentTypes(report: Report, mirror: ServerProcess, evil: HostileServer, served: Outcome[]): Promise<void> {
  const manifest = (mediaType?: string) => JSON.stringify({ schemaVersion: 2, ...(mediaType ? { mediaType } : {}), config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'d'.repeat(64)}`, size: 2 }, layers: [] });
  const answers: Array<[string, Record<string, string>, string]> = [
    ['text/html page', { 'content-type': 'text/html' }, '<html><script>alert(document.cookie)</script></html>'],
    ['Latin-1 content type', { 'content-type': 'application/vnd.oci.image.manifest.v1+json; x=\u00e9' }, manifest()],
    ['manifest whose mediaType is text/html', { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, manifest('text/html')],
    ['no content type at all', {}, manifest()],
  ];
  for (const [index, [what, headers, body]] of answers.entries()) {
    evil.handle((_req, res) => answer(res, 200, headers, body));
    const outcome = await tryGet(`${mirror.url}/v2/evil.io/types${index}/manifests/latest`, { accept: ACCEPT });
    manifestRequests.add(outcome);
    served.push(outcome);
    const type = String(outcome.headers['content-type'] ?? '');
    report.check(`${what}: not served with a non-manifest type`, outcome.status !== 200 || MANIFEST_TYPES.has(type), `status ${outcome.status}${type ? `, ${type}` : ''}`);
    await alive(report, mirror, what);
  }
}

async function retryAfter(report: Report, mirror: ServerProcess, fake: FakeRegistry): Promise<void> {
  const image = makeImage({ layers: [100], seed: 'attack-429' });
  pushImage(fake, 'library/limited', 'v1', image);
  fake.setFault('manifest', { status: 429, retryAfter: '999999999', times: 1 });
  const outcome = await tryGet(`${mirror.url}/v2/library/limited/manifests/v1`, { accept: ACCEPT });
  const retry = Number(outcome.headers['retry-after'] ?? NaN);
  report.check('a 429 with Retry-After 999999999: passed on capped to the 6-hour window at most', outcome.status >= 429 && (Number.isNaN(retry) || retry <= MAX_RETRY_AFTER_S), `status ${outcome.status}, Retry-After ${outcome.headers['retry-after'] ?? '-'}`);
  fake.setFault('manifest', null);
  await alive(report, mirror, 'a huge Retry-After');
}
