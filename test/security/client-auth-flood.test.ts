/**
 * auth.htpasswd under a wrong-password flood, on real sockets (issue 12 item 6). Attackers and
 * honest clients connect from different loopback addresses (127.0.0.0/8 is all loopback), so
 * the limits per client address can be seen at work.
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import bcrypt from 'bcryptjs';
import { Hono } from 'hono';
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BcryptWorkerPool, type PasswordComparer } from '../../src/http/bcrypt-worker-pool.js';
import { Htpasswd } from '../../src/http/htpasswd.js';
import { clientAuth, type ClientAuthOptions } from '../../src/http/middleware/client-auth.js';
import { errorResponse } from '../../src/http/oci-error-response.js';
import { basicAuth, get, waitFor } from '../helpers/http.js';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { startMirror, type MirrorUnderTest } from '../helpers/mirror-under-test.js';
import { tempDir, writeHtpasswd, type TempDir } from './security-fixture.js';

const LIMITS = { perClient: 5, perUser: 20, windowMs: 60_000 };

interface Answer {
  status: number;
  retryAfter: string | undefined;
  code: string | undefined;
}

/** Clients that connect from one loopback address each. */
class Clients {
  readonly #agents = new Map<string, Agent>();

  async get(url: string, from: string, authorization: string, headers: Record<string, string> = {}): Promise<Answer> {
    let agent = this.#agents.get(from);
    if (!agent) this.#agents.set(from, (agent = new Agent({ localAddress: from, connections: 64 })));
    const response = await request(url, { dispatcher: agent, headers: { ...headers, authorization }, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const text = await response.body.text();
    const code = text ? (JSON.parse(text) as { errors?: Array<{ code: string }> }).errors?.[0]?.code : undefined;
    return { status: response.statusCode, retryAfter: response.headers['retry-after'] as string | undefined, code };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((agent) => agent.close()));
  }
}

/** The client-auth middleware in front of a trivial /v2/, as app.ts mounts it. */
async function serveWithAuth(htpasswd: Htpasswd, options?: ClientAuthOptions): Promise<{ url: string; close(): Promise<void> }> {
  const app = new Hono();
  app.use(clientAuth(htpasswd, options));
  app.onError((error, c) => errorResponse(error, c.req.method));
  app.get('/v2/', (c) => c.json({}));
  const server = await new Promise<ServerType>((resolve) => {
    const started = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(started));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/`;
  return {
    url,
    close: async () => {
      (server as import('node:http').Server).closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await htpasswd.close();
    },
  };
}

class CountingComparer implements PasswordComparer {
  calls = 0;
  constructor(private readonly inner: PasswordComparer) {}
  compare(password: string, hash: string): Promise<boolean> {
    this.calls += 1;
    return this.inner.compare(password, hash);
  }
}

describe('client auth under a wrong-password flood', () => {
  const hash = bcrypt.hashSync('right', 4);
  const clients = new Clients();
  const servers: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });
  afterAll(() => clients.close());

  async function start(comparer: PasswordComparer): Promise<string> {
    const server = await serveWithAuth(new Htpasswd(new Map([['alice', hash], ['bob', hash]]), { comparer, failureLimits: LIMITS }));
    servers.push(server);
    return server.url;
  }

  it('answers 429 TOOMANYREQUESTS with Retry-After after a few failures, and bcrypt runs a bounded number of times', async () => {
    const comparer = new CountingComparer(new BcryptWorkerPool());
    const url = await start(comparer);
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => clients.get(url, '127.0.0.2', basicAuth(i % 2 ? 'alice' : `nobody-${i}`, `guess-${i}`))));
    const limited = answers.filter((answer) => answer.status === 429);
    expect(answers.filter((answer) => answer.status === 401)).toHaveLength(5);
    expect(limited).toHaveLength(35);
    for (const answer of limited) {
      expect(answer.code).toBe('TOOMANYREQUESTS');
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(answer.retryAfter)).toBeLessThanOrEqual(60);
    }
    expect(comparer.calls).toBe(5);
    const later = await clients.get(url, '127.0.0.2', basicAuth('alice', 'guess-x'));
    expect(later.status).toBe(429);
    expect(comparer.calls).toBe(5);
  });

  it('lets another user log in with the right password from another address during the flood', async () => {
    const comparer = new CountingComparer(new BcryptWorkerPool());
    const url = await start(comparer);
    let flooding = true;
    const limitedAddresses = new Set<string>();
    const attacker = async (address: string) => {
      const statuses: number[] = [];
      for (let i = 0; flooding; i++) {
        const answer = await clients.get(url, address, basicAuth(i % 2 ? 'alice' : `nobody-${i}`, `guess-${address}-${i}`));
        if (answer.status === 429) limitedAddresses.add(address);
        statuses.push(answer.status);
      }
      return statuses;
    };
    const addresses = ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'];
    const attackers = addresses.map(attacker);
    // Once every attacker is being refused, the flood goes on while bob logs in.
    await waitFor(() => limitedAddresses.size === addresses.length, 10_000, 'every attacker limited');
    const honest = [];
    for (let i = 0; i < 3; i++) honest.push(await clients.get(url, '127.0.0.9', basicAuth('bob', 'right')));
    flooding = false;
    const attackStatuses = (await Promise.all(attackers)).flat();
    expect(honest.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect(new Set(attackStatuses)).toEqual(new Set([401, 429]));
    expect(attackStatuses.filter((status) => status === 401).length).toBeLessThanOrEqual(4 * LIMITS.perClient);
    // 4 addresses x 5 guesses, and one comparison for bob (then remembered).
    expect(comparer.calls).toBeLessThanOrEqual(4 * LIMITS.perClient + 1);
  });

  it('behind a front on loopback, keeps the limits per address the front saw (the last X-Forwarded-For entry)', async () => {
    const url = await start(new CountingComparer(new BcryptWorkerPool()));
    const guess = (i: number, forwardedFor: string) => clients.get(url, '127.0.0.2', basicAuth('alice', `guess-${i}`), { 'x-forwarded-for': forwardedFor });
    for (let i = 0; i < 5; i++) expect((await guess(i, '198.51.100.1')).status).toBe(401);
    expect((await guess(5, '198.51.100.1')).status).toBe(429);
    // Entries before the last are the client's own claims: they change nothing.
    expect((await guess(6, '203.0.113.8, 198.51.100.1')).status).toBe(429);
    expect((await guess(7, '198.51.100.1, 198.51.100.2')).status).toBe(401);
    expect((await clients.get(url, '127.0.0.2', basicAuth('bob', 'right'), { 'x-forwarded-for': '198.51.100.3' })).status).toBe(200);
    // Not an address: the peer's address counts.
    expect((await guess(8, 'not-an-address')).status).toBe(401);
  });

  it('answers a client that keeps guessing past its limits only after a pause, holding a bounded number of answers', async () => {
    const pauseMs = 2_000;
    const server = await serveWithAuth(new Htpasswd(new Map([['alice', hash]]), { failureLimits: LIMITS }), { limitedPauseMs: pauseMs, maxPaused: 3 });
    servers.push(server);
    for (let i = 0; i < LIMITS.perClient; i++) expect((await clients.get(server.url, '127.0.0.2', basicAuth('alice', `guess-${i}`))).status).toBe(401);
    const started = performance.now();
    const order: Array<{ index: number; ms: number; status: number }> = [];
    await Promise.all(Array.from({ length: 6 }, async (_, index) => {
      const answer = await clients.get(server.url, '127.0.0.2', basicAuth('alice', `more-${index}`));
      order.push({ index, ms: performance.now() - started, status: answer.status });
    }));
    expect(order.map((entry) => entry.status)).toEqual(Array(6).fill(429));
    // Three were held for the pause; the other three, beyond maxPaused, were answered first.
    const held = order.filter((entry) => entry.ms >= pauseMs);
    expect(held).toHaveLength(3);
    expect(order.slice(0, 3).every((entry) => entry.ms < pauseMs)).toBe(true);
  });

  it('answers 503 with Retry-After when more checks wait than the queue holds', async () => {
    const slowHash = bcrypt.hashSync('right', 10);
    const pool = new BcryptWorkerPool({ workers: 1, maxQueued: 1 });
    const server = await serveWithAuth(new Htpasswd(new Map(Array.from({ length: 8 }, (_, i) => [`user-${i}`, slowHash])), { comparer: pool, failureLimits: LIMITS }));
    servers.push(server);
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => clients.get(server.url, `127.0.1.${i + 1}`, basicAuth(`user-${i}`, 'wrong'))));
    const busy = answers.filter((answer) => answer.status === 503);
    expect(busy.length).toBeGreaterThanOrEqual(1);
    expect(answers.every((answer) => answer.status === 401 || answer.status === 503)).toBe(true);
    for (const answer of busy) {
      expect(answer.code).toBe('UNAVAILABLE');
      expect(Number(answer.retryAfter)).toBeGreaterThanOrEqual(1);
    }
  });
});

describe('client auth under a flood, through the whole mirror', () => {
  let dir: TempDir;
  let upstream: FakeRegistry;
  let mirror: MirrorUnderTest;
  const clients = new Clients();

  beforeAll(async () => {
    dir = await tempDir('mirror-auth-flood-');
    await writeHtpasswd(dir.file('htpasswd'), { alice: 'correct horse', bob: 'battery staple' });
    upstream = await startFakeRegistry();
    mirror = await startMirror({ upstreams: { 'docker.io': { url: upstream.url } }, auth: { htpasswd: dir.file('htpasswd') } });
  });
  afterAll(async () => {
    await clients.close();
    await mirror?.close();
    await upstream?.close();
    await dir?.remove();
  });

  it('limits wrong passwords from one address with 429, and still serves the right one from another', async () => {
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await clients.get(`${mirror.url}/v2/`, '127.0.0.2', basicAuth('alice', `guess-${i}`)));
    expect(answers.map((answer) => answer.status)).toEqual([401, 401, 401, 401, 401, 429]);
    expect(answers.at(-1)!.code).toBe('TOOMANYREQUESTS');
    expect(Number(answers.at(-1)!.retryAfter)).toBeGreaterThanOrEqual(1);
    expect((await get(`${mirror.url}/v2/`, { authorization: basicAuth('bob', 'battery staple') })).status).toBe(200);
    expect((await clients.get(`${mirror.url}/v2/`, '127.0.0.3', basicAuth('alice', 'correct horse'))).status).toBe(200);
  });
});
