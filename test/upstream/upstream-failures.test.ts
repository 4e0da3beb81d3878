import { afterEach, describe, expect, it } from 'vitest';
import {
  BlobUnknownError,
  ManifestUnknownError,
  NameUnknownError,
  TooManyRequestsError,
  UpstreamBadResponseError,
  UpstreamUnavailableError,
} from '../../src/domain/errors.js';
import { UPSTREAM_MANIFEST_ACCEPT } from '../../src/domain/media-types.js';
import { parseRetryAfter } from '../../src/upstream/upstream-failures.js';
import { UpstreamRegistry } from '../../src/upstream/upstream-registry.js';
import { closeAllServers, closedPort, send, startBearerRegistry, startServer, startTokenServer, upstreamFor } from './fake-servers.js';

const GET = { method: 'GET', accept: UPSTREAM_MANIFEST_ACCEPT } as const;
const DIGEST = `sha256:${'d'.repeat(64)}`;
const upstreams: UpstreamRegistry[] = [];

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((upstream) => upstream.close()));
  await closeAllServers();
});

function tracked(upstream: UpstreamRegistry): UpstreamRegistry {
  upstreams.push(upstream);
  return upstream;
}

async function answering(status: number, headers: Record<string, string> = {}) {
  const server = await startServer((_req, res) => send(res, status, headers, 'upstream error body'));
  return tracked(upstreamFor(server.origin));
}

describe('UpstreamRegistry failure mapping', () => {
  it('maps 5xx to UpstreamUnavailableError naming the status', async () => {
    const upstream = await answering(503);
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toSatisfy(
      (error) => error instanceof UpstreamUnavailableError && error.message.includes('503'),
    );
  });

  it('maps 429 to TooManyRequestsError with Retry-After seconds', async () => {
    const upstream = await answering(429, { 'retry-after': '17' });
    const error = await upstream.fetchBlob('library/alpine', DIGEST).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TooManyRequestsError);
    expect((error as TooManyRequestsError).retryAfterSeconds).toBe(17);
  });

  it('parses Retry-After as seconds or an HTTP-date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:01:30 GMT', now)).toBe(90);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('maps other unexpected statuses to UpstreamBadResponseError', async () => {
    const upstream = await answering(400);
    await expect(upstream.fetchTags('library/alpine', '')).rejects.toBeInstanceOf(UpstreamBadResponseError);
  });

  it('maps 404 per endpoint', async () => {
    const upstream = await answering(404);
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(ManifestUnknownError);
    await expect(upstream.fetchManifest('library/alpine', 'latest', { ...GET, method: 'HEAD' })).rejects.toBeInstanceOf(ManifestUnknownError);
    await expect(upstream.fetchBlob('library/alpine', DIGEST)).rejects.toBeInstanceOf(BlobUnknownError);
    await expect(upstream.headBlob('library/alpine', DIGEST)).rejects.toBeInstanceOf(BlobUnknownError);
    await expect(upstream.fetchTags('library/alpine', '')).rejects.toBeInstanceOf(NameUnknownError);
    await expect(upstream.fetchReferrers('library/alpine', DIGEST)).resolves.toBeNull();
  });

  it('maps connection refused to UpstreamUnavailableError', async () => {
    const upstream = tracked(upstreamFor(`http://127.0.0.1:${await closedPort()}`));
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });

  it('maps a reset connection to UpstreamUnavailableError', async () => {
    const server = await startServer((req) => req.socket.destroy());
    const upstream = tracked(upstreamFor(server.origin));
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });

  it('maps a body cut short to UpstreamUnavailableError', async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-length': 1000 });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const upstream = tracked(upstreamFor(server.origin));
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });

  it('maps a headers timeout to UpstreamUnavailableError', async () => {
    const server = await startServer(() => undefined); // never answers
    const upstream = tracked(
      new UpstreamRegistry({ name: 'slow', config: { url: server.origin, tokenRealms: [] }, timeouts: { connectMs: 1000, headersMs: 150, idleMs: 150 } }),
    );
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });

  it('passes the caller\'s abort through instead of reporting an outage', async () => {
    const server = await startServer(() => undefined);
    const upstream = tracked(upstreamFor(server.origin));
    const controller = new AbortController();
    const pending = upstream.fetchManifest('library/alpine', 'latest', { ...GET, signal: controller.signal });
    const reason = new Error('client went away');
    setTimeout(() => controller.abort(reason), 20);
    await expect(pending).rejects.toBe(reason);
  });

  it('never puts the password or a token in an error message', async () => {
    const password = 'pw-SECRET-9876';
    const config = { username: 'carol', password };
    const messages: string[] = [];
    const collect = (promise: Promise<unknown>) => promise.then(() => messages.push('resolved'), (e: Error) => messages.push(`${e.message} ${JSON.stringify(e)}`));

    const refusingTokens = await startServer((_req, res) => send(res, 401, { 'www-authenticate': 'Basic realm="t"' }));
    const failingTokens = await startServer((_req, res) => send(res, 500));
    const untrusted = await startTokenServer();
    for (const tokens of [refusingTokens, failingTokens, untrusted]) {
      const registry = await startBearerRegistry(() => `${tokens.origin}/token?account=carol`, () => undefined);
      const trust = tokens === untrusted ? [] : [tokens.host];
      await collect(tracked(upstreamFor(registry.origin, { ...config, tokenRealms: trust })).fetchManifest('library/alpine', 'latest', GET));
    }
    const issuing = await startTokenServer({ basic: `carol:${password}` });
    const neverAccepts = await startBearerRegistry(() => `${issuing.origin}/token`, () => undefined);
    await collect(tracked(upstreamFor(neverAccepts.origin, { ...config, tokenRealms: [issuing.host] })).fetchManifest('library/alpine', 'latest', GET));
    const basicOnly = await startServer((_req, res) => send(res, 401, { 'www-authenticate': 'Basic realm="r"' }));
    await collect(tracked(upstreamFor(basicOnly.origin, config)).fetchBlob('library/alpine', DIGEST));
    await collect(tracked(upstreamFor(`http://127.0.0.1:${await closedPort()}`, config)).fetchTags('library/alpine', 'n=1'));

    expect(messages).toHaveLength(6);
    expect(issuing.issued).toEqual(['tok-1']);
    for (const message of messages) {
      expect(message).not.toContain(password);
      expect(message).not.toContain(Buffer.from(`carol:${password}`).toString('base64'));
      expect(message).not.toContain('tok-1');
      expect(message).not.toBe('resolved');
    }
    expect(() => upstreamFor(`http://carol:${password}@127.0.0.1:1`)).toThrow(TypeError);
    try {
      upstreamFor(`http://carol:${password}@127.0.0.1:1`);
    } catch (error) {
      expect((error as Error).message).not.toContain(password);
    }
  });

  it('validates timeouts when built, naming the option', () => {
    expect(
      () => new UpstreamRegistry({ name: 'x', config: { url: 'http://127.0.0.1:1', tokenRealms: [] }, timeouts: { connectMs: 1, headersMs: -1, idleMs: 1 } }),
    ).toThrow('expected timeouts.headersMs to be a positive number of milliseconds, got -1');
  });
});
