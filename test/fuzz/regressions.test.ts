/**
 * One focused example per defect the property-based tests in this folder found, so each stays
 * fixed even if a generator changes. Each names the property that found it.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importOciArchive } from '../../src/airgap/import-archive.js';
import { readOciArchive } from '../../src/airgap/oci-archive-reader.js';
import type { Mirror } from '../../src/compose.js';
import { ManifestInvalidError, MirrorError } from '../../src/domain/errors.js';
import { tempDir, toolMirror } from '../airgap/airgap-fixture.js';
import { NameUnknownError } from '../../src/domain/errors.js';
import { isRegistryHost } from '../../src/domain/registry-host.js';
import { parseRangeHeader, resolveRange } from '../../src/domain/byte-range.js';

const parseByteRange = (header: string | undefined, size: number) => resolveRange(parseRangeHeader(header), size);
import { parseAuthChallenges } from '../../src/upstream/auth-challenge.js';
import { UpstreamRouter } from '../../src/upstream/upstream-router.js';

describe('found by fuzzing', () => {
  it('Range: the unit is case-insensitive (RFC 9110 section 14.1); "Bytes=0-0" was refused with 416', () => {
    expect(parseByteRange('Bytes=0-0', 1)).toEqual({ start: 0, end: 0 });
    expect(parseByteRange('BYTES=-1', 10)).toEqual({ start: 9, end: 9 });
  });

  it('WWW-Authenticate: an empty quoted value is a parameter, not a new challenge named after it', () => {
    expect(parseAuthChallenges('Bearer realm="https://t.example/token",service="",scope="x"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://t.example/token', service: '', scope: 'x' } },
    ]);
    expect(parseAuthChallenges('Basic realm=""')).toEqual([{ scheme: 'basic', params: { realm: '' } }]);
  });

  it('WWW-Authenticate: parameters named like Object.prototype members keep their values', () => {
    const [challenge] = parseAuthChallenges('Bearer realm="r", constructor="c", toString=t, valueOf="v", __proto__="p"');
    expect(challenge!.params.constructor).toBe('c');
    expect(challenge!.params.tostring).toBe('t'); // names are lower-cased
    expect(challenge!.params.valueof).toBe('v');
    expect(Object.getOwnPropertyDescriptor(challenge!.params, '__proto__')?.value).toBe('p');
    expect(challenge!.params.realm).toBe('r');
  });

  it('registry hosts: localhost is a host name in any case, like every other (DNS names are case-insensitive)', () => {
    expect(isRegistryHost('LOCALHOST:5000')).toBe(true);
    expect(isRegistryHost('localHost')).toBe(true);
    const router = new UpstreamRouter(['docker.io', 'localhost:5000'], 'docker.io');
    expect(router.route('app', 'LocalHost:5000')).toEqual({ kind: 'proxy', upstream: 'localhost:5000', repository: 'app' });
    expect(router.route('LOCALHOST:5000/app', undefined)).toEqual({ kind: 'proxy', upstream: 'localhost:5000', repository: 'app' });
    // The docker reference rule: a first component with upper case names a registry.
    expect(() => router.route('LOCALHOST/app', undefined)).toThrow(NameUnknownError);
  });
});

/** A tar of `entries` (name -> bytes) in one buffer, as tar(1) writes it: 512-byte headers. */
function tarOf(entries: Record<string, string | Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, body] of Object.entries(entries)) {
    const data = Buffer.from(body);
    const header = Buffer.alloc(512);
    header.write(name, 0, 100);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write('00000000000\0', 136);
    header.write('0', 156);
    header.write('ustar\u000000', 257);
    header.fill(' ', 148, 156);
    const checksum = header.reduce((sum, byte) => sum + byte, 0);
    header.write(`${checksum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024)]);
}

describe('found by fuzzing: archives', () => {
  let sandbox: { dir: string; remove: () => Promise<void> };
  let mirror: Mirror;
  beforeAll(async () => {
    sandbox = await tempDir('mirror-fuzz-regressions-');
    mirror = await toolMirror(`${sandbox.dir}/cache`, { 'docker.io': 'http://127.0.0.1:9' });
  });
  afterAll(async () => {
    await mirror?.close();
    await sandbox?.remove();
  });

  async function failureOf(work: Promise<unknown>): Promise<unknown> {
    return work.then(() => undefined, (error: unknown) => error);
  }

  it('a tar with a corrupt header is refused with a MirrorError, not tar-stream\'s plain Error', async () => {
    const data = tarOf({ 'oci-layout': '{"imageLayoutVersion":"1.0.0"}' });
    data[148] = 0x39; // the header checksum no longer matches
    const error = await failureOf(readOciArchive(Readable.from([data]), mirror));
    expect(error).toBeInstanceOf(MirrorError);
    expect((error as Error).message).toMatch(/not a valid tar/);
  });

  it('a tar cut short inside an entry is refused with a MirrorError', async () => {
    const data = tarOf({ 'index.json': '{"manifests":[]}'.padEnd(2000) }).subarray(0, 1000);
    expect(await failureOf(readOciArchive(Readable.from([data]), mirror))).toBeInstanceOf(MirrorError);
  });

  it('a tar cut short inside a blob, arriving in small chunks, is refused with a MirrorError (not streamx\'s "Stream was destroyed")', async () => {
    const layer = Buffer.alloc(3000, 7);
    const data = tarOf({ [`blobs/sha256/${createHash('sha256').update(layer).digest('hex')}`]: layer }).subarray(0, 1500);
    const error = await failureOf(readOciArchive(Readable.from([...data].map((byte) => Buffer.from([byte]))), mirror));
    expect(error).toBeInstanceOf(MirrorError);
    expect((error as Error).message).toMatch(/not a valid tar/);
  });

  it('an oci-layout that is not a JSON object is refused with ManifestInvalidError', async () => {
    for (const layout of ['not json', 'null', '[]', '"1.0.0"']) {
      const error = await failureOf(readOciArchive(Readable.from([tarOf({ 'oci-layout': layout })]), mirror));
      expect(error, layout).toBeInstanceOf(ManifestInvalidError);
    }
  });

  it('an index.json that is not an object with a list of descriptors is refused with ManifestInvalidError', async () => {
    for (const index of ['not json', 'null', '{"manifests":7}', '{"manifests":[null]}', '{"manifests":[{"digest":7}]}', '{"manifests":["x"]}']) {
      const error = await failureOf(importOciArchive(Readable.from([tarOf({ 'index.json': index })]), mirror));
      expect(error, index).toBeInstanceOf(ManifestInvalidError);
    }
  });
});
