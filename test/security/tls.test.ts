/**
 * tls.cert / tls.key: the mirror speaks HTTPS (served exactly as `serve` does it), verified by
 * a client that trusts only the test's own self-signed CA; with auth.htpasswd on top.
 */
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeMirror, type Mirror } from '../../src/compose.js';
import { ConfigError, parseMirrorConfig } from '../../src/config/mirror-config.js';
import { tlsServeOptions } from '../../src/http/tls.js';
import { createLogger } from '../../src/log.js';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { basicAuth, sha256 } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { selfSignedCertificate, tempDir, writeHtpasswd, type TempDir } from './security-fixture.js';

describe('TLS', () => {
  let dir: TempDir;
  let upstream: FakeRegistry;
  let mirror: Mirror;
  let server: ServerType;
  let port: number;
  let trusting: Agent;
  const image = makeImage({ layers: [4096], seed: 'tls' });
  const authorization = basicAuth('alice', 'pw-for-tls');

  beforeAll(async () => {
    dir = await tempDir('mirror-tls-');
    const { certFile, keyFile, cert } = await selfSignedCertificate(dir);
    await writeHtpasswd(dir.file('htpasswd'), { alice: 'pw-for-tls' });
    upstream = await startFakeRegistry({ auth: 'bearer' });
    pushImage(upstream, 'library/alpine', 'latest', image);
    const config = parseMirrorConfig({
      listen: { host: '127.0.0.1', port: 0 },
      log: { level: 'silent' },
      cache: { dir: dir.file('cache') },
      tls: { cert: certFile, key: keyFile },
      auth: { htpasswd: dir.file('htpasswd') },
      upstreams: { 'docker.io': { url: upstream.url, tokenRealms: [new URL(upstream.tokenUrl).host] } },
    });
    mirror = await composeMirror(config, createLogger('silent'));
    const tls = await tlsServeOptions(config.tls);
    server = await new Promise<ServerType>((resolve, reject) => {
      const started = serve({ fetch: mirror.app.fetch, hostname: '127.0.0.1', port: 0, ...tls }, () => resolve(started));
      started.once('error', reject);
    });
    port = (server.address() as AddressInfo).port;
    trusting = new Agent({ connect: { ca: cert } });
  });
  afterAll(async () => {
    await trusting?.close();
    (server as import('node:https').Server | undefined)?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await mirror?.close();
    await upstream?.close();
    await dir?.remove();
  });

  async function fetchTls(path: string, headers: Record<string, string> = {}) {
    const response = await request(`https://127.0.0.1:${port}${path}`, { dispatcher: trusting, headers, headersTimeout: 10_000, bodyTimeout: 10_000 });
    return { status: response.statusCode, headers: response.headers, body: Buffer.from(await response.body.arrayBuffer()) };
  }

  it('answers /v2/ over HTTPS: 401 with a challenge without credentials, 200 with them', async () => {
    const refused = await fetchTls('/v2/');
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toMatch(/^Basic realm="registry-mirror"/);
    expect((await fetchTls('/v2/', { authorization: basicAuth('alice', 'wrong') })).status).toBe(401);
    expect((await fetchTls('/v2/', { authorization })).status).toBe(200);
    expect((await fetchTls('/healthz')).status).toBe(200);
  });

  it('pulls a manifest and a layer over HTTPS', async () => {
    const manifest = await fetchTls('/v2/library/alpine/manifests/latest', { authorization, accept: image.manifest.mediaType });
    expect(manifest.status, manifest.body.toString()).toBe(200);
    expect(manifest.body.equals(image.manifest.bytes)).toBe(true);
    const layer = await fetchTls(`/v2/library/alpine/blobs/${image.layers[0]!.digest}`, { authorization });
    expect(layer.status).toBe(200);
    expect(sha256(layer.body)).toBe(image.layers[0]!.digest);
  });

  it('is not reachable with plain HTTP, nor by a client that does not trust the certificate', async () => {
    await expect(request(`http://127.0.0.1:${port}/healthz`, { headersTimeout: 5_000, bodyTimeout: 5_000 }).then(async (r) => {
      await r.body.dump();
      if (r.statusCode === 200) throw new Error('plain HTTP was answered');
      return r.statusCode;
    })).rejects.toThrow();
    await expect(request(`https://127.0.0.1:${port}/healthz`, { headersTimeout: 5_000 })).rejects.toThrow(/self[- ]signed|certificate/i);
  });

  it('refuses unreadable files and a key that does not belong to the certificate, naming the key', async () => {
    await expect(tlsServeOptions({ cert: dir.file('missing.pem'), key: dir.file('key.pem') })).rejects.toThrow(/tls\.cert: cannot read/);
    const other = await tempDir('mirror-tls-other-');
    try {
      const { keyFile } = await selfSignedCertificate(other);
      await expect(tlsServeOptions({ cert: dir.file('cert.pem'), key: keyFile })).rejects.toThrow(ConfigError);
      await writeFile(other.file('garbage.pem'), 'not a pem');
      await expect(tlsServeOptions({ cert: other.file('garbage.pem'), key: keyFile })).rejects.toThrow(/^tls: /);
    } finally {
      await other.remove();
    }
  });

  it('requires both cert and key in the config', () => {
    expect(() => parseMirrorConfig({ upstreams: { 'docker.io': { url: 'https://registry-1.docker.io' } }, tls: { cert: 'a.pem' } })).toThrow(/tls\.key: is required/);
  });
});
