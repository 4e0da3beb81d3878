/**
 * The anonymous probe (pull-through/access-policy.ts) once per machine: with `serve --workers 2`
 * and upstream credentials, anonymous clients of a repository the mirror has not judged yet reach
 * both workers at once. The workers share probe flights through their primary; the worker that
 * waited for the other's probe takes the verdict that probe recorded instead of asking the
 * upstream again (before: a second probe, started only once the first had ended, so that
 * worker's clients waited for two probes in a row). Real processes: `node dist/main.js serve`.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import type { FakeRegistry } from '../helpers/fake-registry.js';
import { deliveredExactly, timedGet } from '../replicas/fleet-support.js';
import { useServedWorkers } from './serve-workers.js';

const REPO = 'library/probed';
const CLIENTS = 12;
/** Every blob answer waits this long: each worker's clients arrive while the first probe runs. */
const UPSTREAM_DELAY_MS = 400;

describe('serve --workers 2 with upstream credentials', () => {
  const serve = useServedWorkers();

  it('anonymous clients of a new repository on both workers: one fetch without the mirror\'s credentials is the probe, every client served', { timeout: 120_000 }, async () => {
    const { fake, served } = await serve({
      fake: { auth: 'bearer', users: { alice: 'upstream-pw' }, privatePrefixes: ['testuser/'] },
      upstream: (upstream) => ({ url: upstream.url, username: 'alice', password: 'upstream-pw', tokenRealms: [new URL(upstream.tokenUrl).host] }),
    });
    const image = makeImage({ layers: [256 * 1024], seed: 'workers-probe' });
    pushImage(fake, REPO, 'latest', image);
    const layer = image.layers[0]!;
    fake.setFault('blob', { delayMs: UPSTREAM_DELAY_MS });

    const responses = await Promise.all(Array.from({ length: CLIENTS }, () => timedGet(`${served.url}/v2/${REPO}/blobs/${layer.digest}`)));
    for (const response of responses) expect(deliveredExactly(response, layer.bytes)).toBe(true);
    const lines = () => served.lines.filter((line) => line.msg === 'request' && line.path === `/v2/${REPO}/blobs/${layer.digest}`);
    await waitFor(() => lines().length === CLIENTS, 20_000, 'the request log lines');
    expect(new Set(lines().map((line) => line.worker)).size, 'both workers had clients').toBe(2);

    // The blob is fetched once, without the mirror's credentials: that GET is the anonymous probe
    // (guarded-registry.ts); no HEAD, and no token with the credentials for this repository.
    const answered = fake.requests.filter((record) => record.server === 'registry' && record.path.endsWith(layer.digest) && record.status !== 401);
    expect(answered.map((record) => record.method), 'upstream requests that reached the content').toEqual(['GET']);
    const tokens = fake.requests.filter((record) => record.server === 'token' && record.query.includes(encodeURIComponent(`repository:${REPO}:pull`)));
    expect(tokens.map((record) => record.headers.authorization === undefined ? 'anonymous' : 'with credentials'), 'tokens for the repository').toEqual(['anonymous']);
  });

  const withCredentials = {
    fake: { auth: 'bearer' as const, users: { alice: 'upstream-pw' } },
    upstream: (upstream: FakeRegistry) => ({ url: upstream.url, username: 'alice', password: 'upstream-pw', tokenRealms: [new URL(upstream.tokenUrl).host] }),
  };
  const pings = (fake: FakeRegistry) => fake.requests.filter((record) => record.server === 'registry' && record.method === 'GET' && record.path === '/v2/');

  it('each worker learns the upstream\'s challenge at start (GET /v2/), so a cold blob\'s fetch and anonymous probe meet no 401', { timeout: 120_000 }, async () => {
    const { fake, served } = await serve(withCredentials);
    await waitFor(() => pings(fake).length === 2, 20_000, 'a GET /v2/ from each worker');
    expect(pings(fake).map((record) => record.status)).toEqual([401, 401]);
    const image = makeImage({ layers: [64 * 1024], seed: 'workers-ping' });
    pushImage(fake, REPO, 'latest', image);
    const layer = image.layers[0]!;
    const responses = await Promise.all(Array.from({ length: 4 }, () => timedGet(`${served.url}/v2/${REPO}/blobs/${layer.digest}`)));
    for (const response of responses) expect(deliveredExactly(response, layer.bytes)).toBe(true);
    const refused = fake.requests.filter((record) => record.server === 'registry' && record.status === 401 && record.path !== '/v2/');
    expect(refused.map((record) => `${record.method} ${record.path}`)).toEqual([]);
  });

  it('an offline mirror does not ask the upstream anything at start', { timeout: 120_000 }, async () => {
    const { fake, served } = await serve({ ...withCredentials, config: { offline: true } });
    expect((await timedGet(`${served.url}/v2/`)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(fake.requests.filter((record) => record.server === 'registry')).toEqual([]);
  });
});
