import { afterEach, describe, expect, it, vi } from 'vitest';
import { DeniedError, UnauthorizedError, UpstreamBadResponseError } from '../../src/domain/errors.js';
import { UPSTREAM_MANIFEST_ACCEPT } from '../../src/domain/media-types.js';
import type { UpstreamResponseInfo } from '../../src/upstream/upstream-registry.js';
import {
  acceptIssuedTokens,
  closeAllServers,
  MANIFEST_BODY,
  manifestRoute,
  send,
  startBearerRegistry,
  startServer,
  startTokenServer,
  upstreamFor,
} from './fake-servers.js';

const GET = { method: 'GET', accept: UPSTREAM_MANIFEST_ACCEPT } as const;
const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(closers.splice(0).map((close) => close()));
  await closeAllServers();
});

function track<T extends { close(): Promise<void> }>(upstream: T): T {
  closers.push(() => upstream.close());
  return upstream;
}

async function bearerSetup(tokenOptions: Parameters<typeof startTokenServer>[0] = {}, config = {}) {
  const tokens = await startTokenServer(tokenOptions);
  const registry = await startBearerRegistry(() => `${tokens.origin}/token`, manifestRoute);
  acceptIssuedTokens(tokens, registry);
  const responses: UpstreamResponseInfo[] = [];
  const upstream = track(upstreamFor(registry.origin, { tokenRealms: [tokens.host], ...config }, responses));
  return { tokens, registry, upstream, responses };
}

const unauthenticated = (requests: { headers: { authorization?: string } }[]) => requests.filter((r) => !r.headers.authorization).length;

describe('UpstreamRegistry bearer authentication', () => {
  it('fetches one token for 20 concurrent manifest GETs needing one scope', async () => {
    const { tokens, registry, upstream } = await bearerSetup();
    const results = await Promise.all(Array.from({ length: 20 }, () => upstream.fetchManifest('library/alpine', 'latest', GET)));
    expect(results.map((result) => result.bytes?.toString())).toEqual(Array(20).fill(MANIFEST_BODY));
    expect(tokens.requests).toHaveLength(1);
    const query = new URL(tokens.requests[0]!.path, tokens.origin).searchParams;
    expect([query.get('service'), query.get('scope')]).toEqual(['fake.registry', 'repository:library/alpine:pull']);
    expect(tokens.requests[0]!.headers.authorization).toBeUndefined(); // anonymous without credentials
    expect(registry.requests.filter((r) => r.headers.authorization === 'Bearer tok-1')).toHaveLength(20);
  });

  it('reuses a token across sequential requests until it expires', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { tokens, registry, upstream } = await bearerSetup({ expiresIn: 300 });
    for (let i = 0; i < 3; i++) await upstream.fetchManifest('library/alpine', 'latest', GET);
    expect(tokens.requests).toHaveLength(1);
    expect(registry.requests).toHaveLength(4); // one 401, then three with the token
    vi.setSystemTime(Date.now() + 301_000);
    await upstream.fetchManifest('library/alpine', 'latest', GET);
    expect(tokens.requests).toHaveLength(2);
    expect(registry.requests.at(-1)!.headers.authorization).toBe('Bearer tok-2');
    expect(unauthenticated(registry.requests)).toBe(1);
  });

  it('asks for a token up front for another repository once the challenge is known', async () => {
    const { tokens, registry, upstream } = await bearerSetup();
    await upstream.fetchManifest('library/alpine', 'latest', GET);
    await upstream.fetchManifest('library/busybox', 'latest', GET);
    await upstream.fetchTags('library/busybox', 'n=5');
    expect(unauthenticated(registry.requests)).toBe(1);
    expect(registry.requests.map((r) => r.headers.authorization)).toEqual([undefined, 'Bearer tok-1', 'Bearer tok-2', 'Bearer tok-2']);
    expect(tokens.requests.map((r) => new URL(r.path, tokens.origin).searchParams.get('scope'))).toEqual([
      'repository:library/alpine:pull',
      'repository:library/busybox:pull',
    ]);
  });

  it('sends configured credentials to the token endpoint and accepts access_token', async () => {
    const { tokens, upstream, responses } = await bearerSetup({ basic: 'alice:s3cret', field: 'access_token' }, { username: 'alice', password: 's3cret' });
    const result = await upstream.fetchManifest('library/alpine', 'latest', GET);
    expect(result.bytes?.toString()).toBe(MANIFEST_BODY);
    expect(tokens.requests[0]!.headers.authorization).toBe(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
    expect(tokens.requests[0]!.headers['user-agent']).toBe('registry-mirror/0.1');
    expect(responses.map((r) => [r.kind, r.status])).toEqual([['manifest', 401], ['token', 200], ['manifest', 200]]);
  });

  it('drops a rejected cached token and fetches a new one once', async () => {
    const { tokens, registry, upstream } = await bearerSetup();
    await upstream.fetchManifest('library/alpine', 'latest', GET);
    registry.accepted.delete('tok-1');
    await upstream.fetchManifest('library/alpine', 'latest', GET);
    expect(tokens.issued).toEqual(['tok-1', 'tok-2']);
    expect(registry.requests.map((r) => r.headers.authorization)).toEqual([undefined, 'Bearer tok-1', 'Bearer tok-1', 'Bearer tok-2']);
  });

  it('gives up with UnauthorizedError when the fresh token is refused too', async () => {
    const tokens = await startTokenServer();
    const registry = await startBearerRegistry(() => `${tokens.origin}/token`, manifestRoute); // accepts nothing
    const upstream = track(upstreamFor(registry.origin, { tokenRealms: [tokens.host] }));
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(registry.requests).toHaveLength(2);
    expect(tokens.requests).toHaveLength(1);
  });

  it('maps 403 to DeniedError', async () => {
    const denied = await startServer((_req, res) => send(res, 403));
    const upstream = track(upstreamFor(denied.origin));
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(DeniedError);
    expect(denied.requests).toHaveLength(1);
  });
});

describe('UpstreamRegistry token answers', () => {
  it('a token that cannot be an Authorization header value (CR, LF, spaces) is the upstream\'s fault: UpstreamBadResponseError, and it is never sent', async () => {
    for (const token of ['tok\r\nX-Injected: 1', 'tok with spaces', 'tok\u0000']) {
      const tokens = await startServer((_req, res) => send(res, 200, { 'content-type': 'application/json' }, JSON.stringify({ token })));
      const registry = await startBearerRegistry(() => `${tokens.origin}/token`, manifestRoute);
      const upstream = track(upstreamFor(registry.origin, { tokenRealms: [tokens.host] }));
      await expect(upstream.fetchManifest('library/alpine', 'latest', GET), JSON.stringify(token)).rejects.toThrow(UpstreamBadResponseError);
      await expect(upstream.fetchManifest('library/alpine', 'latest', GET), JSON.stringify(token)).rejects.toThrow(/token request to .* the answer's token is not a bearer token/);
      expect(registry.requests.every((request) => request.headers.authorization === undefined), JSON.stringify(token)).toBe(true);
    }
  });
});

describe('UpstreamRegistry token realm trust', () => {
  it('refuses an untrusted realm without connecting to it', async () => {
    const tokens = await startTokenServer();
    const registry = await startBearerRegistry(() => `${tokens.origin}/token`, manifestRoute);
    const upstream = track(upstreamFor(registry.origin, { username: 'alice', password: 'hunter2-pw' }));
    const error = await upstream.fetchManifest('library/alpine', 'latest', GET).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect((error as Error).message).toContain(tokens.host);
    expect((error as Error).message).not.toContain('hunter2-pw');
    expect(tokens.requests).toHaveLength(0);
  });

  it('refuses a realm that is not http(s)', async () => {
    const registry = await startBearerRegistry(() => 'file:///etc/passwd', manifestRoute);
    const upstream = track(upstreamFor(registry.origin));
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UnauthorizedError);
  });

  it('trusts a realm on the upstream host itself', async () => {
    const issued: string[] = [];
    const server = await startServer((req, res) => {
      if (req.url?.startsWith('/token')) {
        issued.push('own-1');
        return send(res, 200, {}, JSON.stringify({ token: 'own-1', expires_in: 300 }));
      }
      if (req.headers.authorization === 'Bearer own-1') return manifestRoute(req, res);
      send(res, 401, { 'www-authenticate': `Bearer realm="http://${req.headers.host}/token"` });
    });
    const upstream = track(upstreamFor(server.origin));
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).resolves.toMatchObject({ size: MANIFEST_BODY.length });
    expect(issued).toEqual(['own-1']);
    expect(new URL(server.requests[1]!.path, server.origin).searchParams.has('service')).toBe(false);
  });
});

describe('UpstreamRegistry Basic authentication', () => {
  async function basicRegistry() {
    const expected = `Basic ${Buffer.from('bob:pa55word').toString('base64')}`;
    return startServer((req, res) => {
      if (req.headers.authorization === expected) return manifestRoute(req, res);
      send(res, 401, { 'www-authenticate': 'Basic realm="registry", charset="UTF-8"' });
    });
  }

  it('answers a Basic challenge with the configured credentials, then sends them up front', async () => {
    const registry = await basicRegistry();
    const upstream = track(upstreamFor(registry.origin, { username: 'bob', password: 'pa55word' }));
    await upstream.fetchManifest('team/app', 'v1', GET);
    await upstream.fetchManifest('team/other', 'v1', GET);
    expect(registry.requests.map((r) => r.headers.authorization?.slice(0, 6))).toEqual([undefined, 'Basic ', 'Basic ']);
  });

  it('throws UnauthorizedError without credentials or with wrong ones, never echoing the password', async () => {
    const registry = await basicRegistry();
    const anonymous = track(upstreamFor(registry.origin));
    await expect(anonymous.fetchManifest('team/app', 'v1', GET)).rejects.toBeInstanceOf(UnauthorizedError);
    const wrong = track(upstreamFor(registry.origin, { username: 'bob', password: 'wrong-secret-pw' }));
    const error = await wrong.fetchManifest('team/app', 'v1', GET).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect(`${(error as Error).message} ${JSON.stringify(error)}`).not.toContain('wrong-secret-pw');
    expect(registry.requests).toHaveLength(3); // anonymous: 1; wrong: 401, then one try with Basic
  });
});

describe('UpstreamRegistry.learnChallenge (GET /v2/ before the first pull)', () => {
  it('learns a Bearer challenge: the first pull and the first anonymous probe then ask for their tokens at once, without a 401', async () => {
    const { tokens, registry, upstream, responses } = await bearerSetup();
    expect(await upstream.learnChallenge()).toBe(true);
    expect(registry.requests.map((r) => `${r.method} ${r.path} ${r.headers.authorization ?? '-'}`)).toEqual(['GET /v2/ -']);
    expect(responses.map((r) => [r.kind, r.status])).toEqual([['ping', 401]]);

    await upstream.fetchManifest('library/alpine', 'latest', GET);
    expect(await upstream.probeAnonymous('library/alpine', { kind: 'manifest', reference: 'latest' })).toBe('readable');
    expect(unauthenticated(registry.requests)).toBe(1); // the ping alone
    expect(registry.requests.filter((r) => r.path !== '/v2/').map((r) => [r.method, r.headers.authorization?.slice(0, 7)])).toEqual([['GET', 'Bearer '], ['HEAD', 'Bearer ']]);
    expect(tokens.requests).toHaveLength(2);
  });

  it('learns Basic for the configured credentials only: an anonymous probe still asks without them first', async () => {
    const expected = `Basic ${Buffer.from('bob:pa55word').toString('base64')}`;
    const registry = await startServer((req, res) => {
      if (req.headers.authorization === expected) return manifestRoute(req, res);
      if (req.url !== '/v2/' && req.headers.authorization === undefined && req.method === 'HEAD') return manifestRoute(req, res); // public content
      send(res, 401, { 'www-authenticate': 'Basic realm="registry"' });
    });
    const upstream = track(upstreamFor(registry.origin, { username: 'bob', password: 'pa55word' }));
    expect(await upstream.learnChallenge()).toBe(true);
    await upstream.fetchManifest('team/app', 'v1', GET);
    expect(await upstream.probeAnonymous('team/app', { kind: 'manifest', reference: 'v1' })).toBe('readable');
    expect(registry.requests.map((r) => `${r.method} ${r.path} ${r.headers.authorization?.slice(0, 6) ?? '-'}`)).toEqual([
      'GET /v2/ -',
      'GET /v2/team/app/manifests/v1 Basic ',
      'HEAD /v2/team/app/manifests/v1 -',
    ]);
  });

  it('learns no Basic challenge without credentials to answer it: a pull still asks without them first', async () => {
    const registry = await startServer((req, res) => {
      if (req.url === '/v2/') return send(res, 401, { 'www-authenticate': 'Basic realm="registry"' });
      return manifestRoute(req, res); // public content
    });
    const upstream = track(upstreamFor(registry.origin));
    expect(await upstream.learnChallenge()).toBe(false);
    expect((await upstream.fetchManifest('team/app', 'v1', GET)).bytes?.toString()).toBe(MANIFEST_BODY);
    expect(registry.requests.map((r) => `${r.method} ${r.path} ${r.headers.authorization ?? '-'}`)).toEqual(['GET /v2/ -', 'GET /v2/team/app/manifests/v1 -']);
  });

  it('learns nothing from an upstream without authentication, and never throws when the upstream is down', async () => {
    const open = await startServer((_req, res) => send(res, 200, { 'content-type': 'application/json' }, '{}'));
    const upstream = track(upstreamFor(open.origin));
    expect(await upstream.learnChallenge()).toBe(false);
    const { closedPort } = await import('./fake-servers.js');
    const down = track(upstreamFor(`http://127.0.0.1:${await closedPort()}`));
    expect(await down.learnChallenge()).toBe(false);
  });

  it('a 401 without a usable challenge, or with an untrusted realm, is not learned', async () => {
    const { registry, upstream } = await bearerSetup({}, { tokenRealms: ['127.0.0.1:1'] });
    expect(await upstream.learnChallenge()).toBe(false);
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UnauthorizedError);
    expect(registry.requests.map((r) => r.path)).toEqual(['/v2/', '/v2/library/alpine/manifests/latest']);
  });
});
