/**
 * Redirects must not make the mirror dial internal hosts (SSRF): a redirect target is connected
 * to only when it resolves to public addresses, unless it is the upstream's own origin or listed
 * in `redirectHosts` / `tokenRealms`. Sinks count TCP connections, so "refused" means "never dialled".
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { text } from 'node:stream/consumers';
import { afterEach, describe, expect, it } from 'vitest';
import { UpstreamBadResponseError } from '../../src/domain/errors.js';
import { UPSTREAM_MANIFEST_ACCEPT } from '../../src/domain/media-types.js';
import type { UpstreamRegistry } from '../../src/upstream/upstream-registry.js';
import { closeAllServers, closedPort, send, startServer, upstreamFor } from './fake-servers.js';

const BLOB = `sha256:${'e'.repeat(64)}`;
const GET = { method: 'GET', accept: UPSTREAM_MANIFEST_ACCEPT } as const;
const SECRET = '{"AccessKeyId":"ASIA-SECRET","SecretAccessKey":"very-secret"}';

interface Sink {
  host: string;
  port: number;
  connections: number;
  close(): Promise<void>;
}

const sinks: Server[] = [];
const upstreams: UpstreamRegistry[] = [];

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((upstream) => upstream.close()));
  await Promise.all(sinks.splice(0).map((server) => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); })));
  await closeAllServers();
});

/** A stand-in for an internal service (cloud metadata, an admin port) that counts connections. */
async function startSink(address = '127.0.0.1'): Promise<Sink> {
  const server = createServer((_req, res) => send(res, 200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, SECRET));
  const sink = { host: '', port: 0, connections: 0, close: async () => undefined };
  server.on('connection', () => sink.connections++);
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  sinks.push(server);
  sink.port = (server.address() as AddressInfo).port;
  sink.host = address.includes(':') ? `[${address}]:${sink.port}` : `${address}:${sink.port}`;
  return sink;
}

async function redirectingTo(location: string, extra: Parameters<typeof upstreamFor>[1] = {}) {
  const registry = await startServer((_req, res) => send(res, 307, { location }));
  const upstream = upstreamFor(registry.origin, extra);
  upstreams.push(upstream);
  return { registry, upstream };
}

async function refusal(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught as Error);
  expect(error).toBeInstanceOf(UpstreamBadResponseError);
  return error!;
}

describe('redirect targets on internal addresses', () => {
  it('a blob redirect to a loopback port that is not allowed: 502 naming the host and redirectHosts, zero connections there', async () => {
    const sink = await startSink();
    const { upstream } = await redirectingTo(`http://${sink.host}/blobs/x`);
    const error = await refusal(upstream.fetchBlob('library/alpine', BLOB));
    expect(error.message).toContain(sink.host);
    expect(error.message).toContain('upstreams["test.registry"].redirectHosts');
    expect(sink.connections).toBe(0);
  });

  it('a manifest redirect to a metadata-endpoint stand-in never returns its content', async () => {
    const sink = await startSink();
    const { upstream } = await redirectingTo(`http://${sink.host}/latest/meta-data/iam/security-credentials/role`);
    const error = await refusal(upstream.fetchManifest('library/alpine', 'latest', GET));
    expect(error.message).not.toContain('SECRET');
    expect(sink.connections).toBe(0);
  });

  it('a host name that resolves to loopback is refused when resolved (localhost)', async () => {
    const sink = await startSink();
    const { upstream } = await redirectingTo(`http://localhost:${sink.port}/blobs/x`);
    const error = await refusal(upstream.fetchBlob('library/alpine', BLOB));
    expect(error.message).toContain(`localhost:${sink.port}`);
    expect(sink.connections).toBe(0);
  });

  it('IPv4-mapped, unspecified and link-local targets are refused without dialling', async () => {
    const sink = await startSink();
    for (const host of [`[::ffff:127.0.0.1]:${sink.port}`, `0.0.0.0:${sink.port}`, `169.254.169.254:${sink.port}`, `[fe80::1]:${sink.port}`, `10.0.0.1:${sink.port}`]) {
      const { upstream } = await redirectingTo(`http://${host}/x`);
      const error = await refusal(upstream.fetchBlob('library/alpine', BLOB));
      expect(error.message, host).toContain('redirectHosts');
    }
    expect(sink.connections).toBe(0);
  });

  it('refusals read the same for an open and a closed internal port: nothing to scan with', async () => {
    const open = await startSink();
    const closed = await closedPort();
    const messages: string[] = [];
    for (const port of [open.port, closed]) {
      const { upstream } = await redirectingTo(`http://127.0.0.1:${port}/x`);
      messages.push((await refusal(upstream.fetchBlob('library/alpine', BLOB))).message.replaceAll(String(port), 'PORT'));
    }
    expect(messages[0]).toBe(messages[1]);
    expect(messages[0]).not.toMatch(/ECONNREFUSED|unreachable/);
  });

  it('follows a redirect to a host listed in redirectHosts (host:port, or host for the default port)', async () => {
    const cdn = await startSink();
    const { upstream } = await redirectingTo(`http://${cdn.host}/blobs/x`, { redirectHosts: [cdn.host] });
    const blob = await upstream.fetchBlob('library/alpine', BLOB);
    expect(await text(blob.body)).toBe(SECRET);
    expect(cdn.connections).toBe(1);
    // A bare host means the scheme's default port, so it does not allow another port.
    const { upstream: bare } = await redirectingTo(`http://${cdn.host}/blobs/x`, { redirectHosts: ['127.0.0.1'] });
    await refusal(bare.fetchBlob('library/alpine', BLOB));
    expect(cdn.connections).toBe(1);
  });

  it('a tokenRealms entry is a trusted destination too', async () => {
    const cdn = await startSink();
    const { upstream } = await redirectingTo(`http://${cdn.host}/blobs/x`, { tokenRealms: [cdn.host] });
    expect(await text((await upstream.fetchBlob('library/alpine', BLOB)).body)).toBe(SECRET);
  });

  it('the configured upstream itself may be anything, loopback included', async () => {
    const registry = await startServer((_req, res) => send(res, 200, { 'content-type': 'application/octet-stream' }, 'bytes'));
    const upstream = upstreamFor(registry.origin);
    upstreams.push(upstream);
    expect(await text((await upstream.fetchBlob('library/alpine', BLOB)).body)).toBe('bytes');
  });
});
