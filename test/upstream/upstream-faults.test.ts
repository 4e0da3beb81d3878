/**
 * Upstream faults are the upstream's, not the client's (issue 12 item 9): whatever a registry,
 * its CDN or its token realm answers, the client gets a 502/503 (or a 429 with a bounded
 * Retry-After), never a 4xx that would make it give up on the image.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { TooManyRequestsError, UpstreamBadResponseError, UpstreamUnavailableError } from '../../src/domain/errors.js';
import { UPSTREAM_MANIFEST_ACCEPT } from '../../src/domain/media-types.js';
import { MAX_RETRY_AFTER_SECONDS, parseRetryAfter } from '../../src/upstream/upstream-failures.js';
import type { UpstreamRegistry, UpstreamResponseInfo } from '../../src/upstream/upstream-registry.js';
import { closeAllServers, send, startServer, upstreamFor, type Handler } from './fake-servers.js';

const GET = { method: 'GET', accept: UPSTREAM_MANIFEST_ACCEPT } as const;
const DIGEST = `sha256:${'f'.repeat(64)}`;
const upstreams: UpstreamRegistry[] = [];

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((upstream) => upstream.close()));
  await closeAllServers();
});

/** A registry that redirects every blob request to a CDN answering with `cdn`. */
async function behindCdn(cdn: Handler, responses: UpstreamResponseInfo[] = []) {
  const cdnServer = await startServer(cdn);
  const registry = await startServer((_req, res) => send(res, 307, { location: `${cdnServer.origin}/blob?sig=x` }));
  const upstream = upstreamFor(registry.origin, { redirectHosts: [cdnServer.host] }, responses);
  upstreams.push(upstream);
  return upstream;
}

describe('answers from a redirect target (CDN)', () => {
  it.each([401, 403, 404, 400, 410, 416])('%i for a blob GET is a 502, not the CDN status', async (status) => {
    const upstream = await behindCdn((_req, res) => send(res, status, {}, 'cdn says no'));
    const error = await upstream.fetchBlob('library/alpine', DIGEST).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UpstreamBadResponseError);
    expect((error as Error).message).toContain(String(status));
  });

  it('a 5xx is an outage (503), a 429 a rate limit with a bounded Retry-After, reported as cross-origin', async () => {
    const responses: UpstreamResponseInfo[] = [];
    let status = 503;
    const upstream = await behindCdn((_req, res) => send(res, status, { 'retry-after': '999999999' }), responses);
    await expect(upstream.fetchBlob('library/alpine', DIGEST)).rejects.toBeInstanceOf(UpstreamUnavailableError);
    status = 429;
    const limited = (await upstream.fetchBlob('library/alpine', DIGEST).catch((caught: unknown) => caught)) as TooManyRequestsError;
    expect(limited).toBeInstanceOf(TooManyRequestsError);
    expect(limited.retryAfterSeconds).toBe(MAX_RETRY_AFTER_SECONDS);
    expect(responses.map((info) => [info.status, info.crossOrigin ?? false])).toEqual([[307, false], [503, true], [307, false], [429, true]]);
  });

  it('an anonymous probe through a CDN that refuses HEAD is "readable": the registry granted it by redirecting', async () => {
    const upstream = await behindCdn((_req, res) => send(res, 403, {}, 'signature does not match'));
    await expect(upstream.probeAnonymous('library/alpine', { kind: 'blob', digest: DIGEST })).resolves.toBe('readable');
  });
});

describe('odd statuses from the registry itself', () => {
  it.each([400, 405, 416, 418, 304])('%i is a 502 for every call', async (status) => {
    const server = await startServer((_req, res) => send(res, status, {}, 'no'));
    const upstream = upstreamFor(server.origin);
    upstreams.push(upstream);
    for (const call of [
      upstream.fetchManifest('library/alpine', 'latest', GET),
      upstream.fetchManifest('library/alpine', 'latest', { ...GET, method: 'HEAD' }),
      upstream.fetchBlob('library/alpine', DIGEST),
      upstream.headBlob('library/alpine', DIGEST),
      upstream.fetchTags('library/alpine', ''),
      upstream.fetchReferrers('library/alpine', DIGEST),
    ]) {
      await expect(call).rejects.toBeInstanceOf(UpstreamBadResponseError);
    }
  });

  it('a tag list or referrers answer that is not what the spec says is a 502', async () => {
    const server = await startServer((_req, res) => send(res, 200, { 'content-type': 'text/html' }, '<html>'));
    const upstream = upstreamFor(server.origin);
    upstreams.push(upstream);
    await expect(upstream.fetchTags('library/alpine', '')).rejects.toBeInstanceOf(UpstreamBadResponseError);
    await expect(upstream.fetchReferrers('library/alpine', DIGEST)).rejects.toBeInstanceOf(UpstreamBadResponseError);
  });
});

describe('Retry-After', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('is capped at the 6-hour Docker Hub window, as seconds or as an HTTP-date', () => {
    expect(MAX_RETRY_AFTER_SECONDS).toBe(6 * 60 * 60);
    expect(parseRetryAfter('99999999999999999999999', now)).toBe(MAX_RETRY_AFTER_SECONDS);
    expect(parseRetryAfter('21601', now)).toBe(MAX_RETRY_AFTER_SECONDS);
    expect(parseRetryAfter('21600', now)).toBe(21600);
    expect(parseRetryAfter('Fri, 31 Dec 9999 23:59:59 GMT', now)).toBe(MAX_RETRY_AFTER_SECONDS);
  });

  it('is always undefined or a whole number of seconds in [0, 6 h], whatever the header says', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.nat().map(String), fc.date({ noInvalidDate: true }).map((date) => date.toUTCString()), fc.bigInt({ min: 0n }).map(String)), (value) => {
        const seconds = parseRetryAfter(value, now);
        return seconds === undefined || (Number.isInteger(seconds) && seconds >= 0 && seconds <= MAX_RETRY_AFTER_SECONDS);
      }),
      { numRuns: 3000 },
    );
  });

  it('delay-seconds within the cap come back exactly, and an HTTP-date gives the seconds until it', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: MAX_RETRY_AFTER_SECONDS }), (seconds) => parseRetryAfter(String(seconds), now) === seconds));
    fc.assert(fc.property(fc.integer({ min: 0, max: MAX_RETRY_AFTER_SECONDS }), (seconds) => parseRetryAfter(new Date(now + seconds * 1000).toUTCString(), now) === seconds));
  });
});

describe('an untrusted token realm', () => {
  it('reaches an anonymous probe as an error naming the realm and tokenRealms, not as "refused"; logged once', async () => {
    const { startBearerRegistry, startTokenServer, manifestRoute } = await import('./fake-servers.js');
    const { UntrustedRealmError } = await import('../../src/domain/errors.js');
    const { UpstreamRegistry } = await import('../../src/upstream/upstream-registry.js');
    const tokens = await startTokenServer();
    const registry = await startBearerRegistry(() => `${tokens.origin}/token`, manifestRoute);
    const warnings: unknown[][] = [];
    const upstream = new UpstreamRegistry({
      name: 'test.registry',
      config: { url: registry.origin, username: 'alice', password: 'pw' },
      timeouts: { connectMs: 2000, headersMs: 2000, idleMs: 2000 },
      log: { warn: (...args: unknown[]) => void warnings.push(args) } as never,
    });
    upstreams.push(upstream);
    for (let i = 0; i < 2; i++) {
      const error = await upstream.probeAnonymous('library/alpine', { kind: 'manifest', reference: 'latest' }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(UntrustedRealmError);
      expect((error as Error).message).toContain(`${tokens.host}, which is not trusted; add it to upstreams["test.registry"].tokenRealms`);
    }
    await expect(upstream.fetchManifest('library/alpine', 'latest', GET)).rejects.toBeInstanceOf(UntrustedRealmError);
    expect(warnings).toHaveLength(1);
    expect(tokens.requests).toHaveLength(0);
  });
});
