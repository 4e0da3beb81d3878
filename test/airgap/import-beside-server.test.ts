/**
 * Issue 6, "warming while the server runs on the same cache is safe", with real processes: a
 * served mirror (metadata.store "sqlite", the default) keeps running while separate
 * `registry-mirror import` and `registry-mirror warm` processes fill the same cache directory.
 * The server must serve what they recorded at once (no restart, zero upstream requests), and no
 * process's writes may drop another's tags.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { get } from '../helpers/http.js';
import { makeImage, pushImage } from '../helpers/test-images.js';
import { startMirror, type MirrorUnderTest } from '../helpers/mirror-under-test.js';
import { exportTo, tempDir, toolMirror, warm } from './airgap-fixture.js';

const run = promisify(execFile);
const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';

const imported = makeImage({ layers: [30_000], seed: 'imported-beside-server' });
const pulled = makeImage({ layers: [10_000], seed: 'pulled-by-server', mediaTypes: 'docker' });
const pulledLater = makeImage({ layers: [5_000], seed: 'pulled-after-import' });
const warmedBeside = makeImage({ layers: [8_000], seed: 'warmed-beside-server' });

let hub: FakeRegistry;
let work: { dir: string; remove: () => Promise<void> };
let server: MirrorUnderTest | undefined;

beforeAll(async () => {
  hub = await startFakeRegistry();
  pushImage(hub, 'library/alpine', '3.20', imported);
  pushImage(hub, 'library/busybox', '1.36', pulled);
  pushImage(hub, 'library/alpine', 'edge', pulledLater);
  pushImage(hub, 'library/redis', '7.2', warmedBeside);
  work = await tempDir('import-beside-');
});

afterAll(async () => {
  await server?.stop();
  await Promise.all([hub?.close(), work?.remove()]);
});

/** A `registry-mirror` command as its own Node process, on the server's cache directory. */
async function commandInChildProcess(cacheDir: string, args: string[]): Promise<string> {
  const config = path.join(work.dir, 'tool.config.json');
  await writeFile(config, JSON.stringify({ log: { level: 'warn' }, cache: { dir: cacheDir, maxBytes: 2 ** 30 }, upstreams: { 'docker.io': { url: hub.url } } }));
  const { stdout } = await run(process.execPath, ['--import', 'tsx', MAIN, args[0]!, '--config', config, ...args.slice(1)], { timeout: 60_000 });
  return stdout;
}

describe('import in another process beside a running server on the same cache', () => {
  it('the server serves the imported tag without restart and without asking the upstream; no process loses a tag', async () => {
    const archive = path.join(work.dir, 'alpine.tar');
    const connected = await toolMirror(path.join(work.dir, 'connected'), { 'docker.io': hub.url });
    try {
      expect((await warm(connected, ['library/alpine:3.20']))[0]!.error).toBeUndefined();
      expect((await exportTo(connected, ['library/alpine:3.20'], archive)).failures).toEqual([]);
    } finally {
      await connected.close();
    }

    server = await startMirror({ upstreams: { 'docker.io': { url: hub.url } } }, { cacheDir: path.join(work.dir, 'shared') });
    // The server records a tag of its own first.
    expect((await get(`${server.url}/v2/library/busybox/manifests/1.36`, { accept: ACCEPT })).status).toBe(200);
    expect((await server.mirror.metadata.tags.get('docker.io/library/busybox', '1.36'))?.digest).toBe(pulled.manifest.digest);

    expect(await commandInChildProcess(server.cacheDir, ['import', archive])).toMatch(/docker\.io\/library\/alpine:3\.20\s+ok/);
    expect(await commandInChildProcess(server.cacheDir, ['warm', 'library/redis:7.2'])).toMatch(/docker\.io\/library\/redis:7\.2\s+ok/);

    hub.resetCounts();
    const manifest = await get(`${server.url}/v2/library/alpine/manifests/3.20`, { accept: ACCEPT });
    expect(manifest.status).toBe(200);
    expect(manifest.headers['docker-content-digest']).toBe(imported.manifest.digest);
    const layer = imported.layers[0]!;
    const blob = await get(`${server.url}/v2/library/alpine/blobs/${layer.digest}`);
    expect(blob.status).toBe(200);
    expect(blob.body.byteLength).toBe(layer.size);
    const warmed = await get(`${server.url}/v2/library/redis/manifests/7.2`, { accept: ACCEPT });
    expect(warmed.status).toBe(200);
    expect(warmed.headers['docker-content-digest']).toBe(warmedBeside.manifest.digest);
    expect(hub.count(), 'requests the upstream saw for the imported and the warmed image').toBe(0);

    // The server records again after the import (a new tag in the same repository): every
    // process's tags are kept.
    expect((await get(`${server.url}/v2/library/alpine/manifests/edge`, { accept: ACCEPT })).status).toBe(200);
    await server.stop();
    server = undefined;
    const reopened = await toolMirror(path.join(work.dir, 'shared'), { 'docker.io': hub.url }, { offline: true });
    try {
      const tags = [];
      for await (const entry of reopened.metadata.tags.entries()) tags.push(`${entry.repository}:${entry.tag}=${entry.record.digest}`);
      expect(tags.sort()).toEqual([
        `docker.io/library/alpine:3.20=${imported.manifest.digest}`,
        `docker.io/library/alpine:edge=${pulledLater.manifest.digest}`,
        `docker.io/library/busybox:1.36=${pulled.manifest.digest}`,
        `docker.io/library/redis:7.2=${warmedBeside.manifest.digest}`,
      ]);
    } finally {
      await reopened.close();
    }
  });
});
