/**
 * The S3 content store at its network edge: presigned redirects, TLS trust (AWS_CA_BUNDLE), and
 * S3 failing (refused, hung, stalled mid-body, a gateway stopped). Every failure must reject
 * promptly with UpstreamUnavailableError (code UNAVAILABLE, answered 503), never hang, and never
 * end a body cleanly short. The fault servers need no Ceph; the rest runs on the real gateway.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serviceMissing } from '../helpers/required-services.js';
import { digestOf } from '../../src/domain/digest.js';
import { UpstreamUnavailableError } from '../../src/domain/errors.js';
import type { Readable } from 'node:stream';
import type { BlobBody, ContentStore } from '../../src/storage/content-store.js';
import { S3ConfigError } from '../../src/storage/s3/s3-config.js';
import { trustedCertificates } from '../../src/storage/s3/s3-client.js';
import { S3ContentStore } from '../../src/storage/s3/s3-content-store.js';
import { S3_ENV, startExtraGateway } from '../helpers/ceph-s3.js';
import { refusedEndpoint, startBlackHole, startStallingBody, startTlsFront } from '../helpers/fake-s3-faults.js';
import { get } from '../helpers/http.js';
import { useS3 } from '../helpers/s3-suite.js';
import { seededBytes } from '../helpers/test-images.js';
import { MIB, S3Fixture, streamBytes, writeAll } from './s3-fixture.js';

const s3 = useS3();
const FAST_FAILURE = { connectTimeoutMs: 1_000, firstByteTimeoutMs: 1_000, idleTimeoutMs: 1_000, maxAttempts: 2 };
const digest = digestOf(Buffer.from('absent'));
const credentials = { accessKeyId: 'nobody', secretAccessKey: 'nothing' };

/** Resolves to the rejection (or 'resolved') and how long it took. */
async function settle(operation: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  const error = await operation().then(() => 'resolved', (rejection: unknown) => rejection);
  return { error, ms: Date.now() - started };
}

/** Every kind of store call, as a failing S3 sees it. */
function everyOperation(store: ContentStore): Record<string, () => Promise<unknown>> {
  return {
    stat: () => store.stat(digest),
    open: () => store.open(digest),
    read: () => store.read(digest),
    delete: () => store.delete(digest),
    list: async () => { for await (const entry of store.list()) void entry; },
    resumable: () => store.writer({ resumable: true }),
    commit: async () => (await writeAll(await store.writer(), Buffer.from('bytes'))).commit(digestOf(Buffer.from('bytes'))),
    expireWriters: () => store.expireWriters(Date.now()),
  };
}

function streamOf(body: BlobBody | undefined): Readable {
  if (body?.kind !== 'stream') throw new Error(`expected a stream body, got ${body?.kind}`);
  return body.stream;
}

async function expectPromptOutage(store: ContentStore, withinMs: number): Promise<void> {
  for (const [name, operation] of Object.entries(everyOperation(store))) {
    const { error, ms } = await settle(operation);
    expect(error, name).toBeInstanceOf(UpstreamUnavailableError);
    expect(ms, name).toBeLessThan(withinMs);
  }
}

describe('S3 content store when S3 fails (fault servers, no Ceph needed)', () => {
  it('an endpoint that refuses connections: every operation rejects with UNAVAILABLE at once', async () => {
    const store = new S3ContentStore({ endpoint: await refusedEndpoint(), bucket: 'mirror', forcePathStyle: true }, { ...FAST_FAILURE, credentials });
    await expectPromptOutage(store, 3_000);
    // A fill whose first part could not be sent is over: no later write or commit may succeed.
    const bytes = seededBytes(9 * MIB, 'refused');
    const writer = await store.writer();
    await expect(writer.write(bytes)).rejects.toBeInstanceOf(UpstreamUnavailableError);
    await expect(writer.write(Buffer.from('more'))).rejects.toBeInstanceOf(UpstreamUnavailableError);
    await expect(writer.commit(digestOf(bytes))).rejects.toBeInstanceOf(UpstreamUnavailableError);
    await writer.cancel();
    await store.close();
  });

  it('an endpoint that accepts and never answers: rejects after the first-byte timeout, per attempt', async () => {
    const hole = await startBlackHole();
    const store = new S3ContentStore({ endpoint: hole.endpoint, bucket: 'mirror', forcePathStyle: true }, { ...FAST_FAILURE, credentials });
    const { error, ms } = await settle(() => store.stat(digest));
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(ms).toBeGreaterThanOrEqual(1_900);
    expect(ms).toBeLessThan(6_000);
    expect(hole.accepted).toBeGreaterThanOrEqual(1);
    await store.close();
    await hole.close();
  });

  it('a body that stalls: the stream fails after the idle timeout, it never ends cleanly short', async () => {
    const stall = await startStallingBody(1_000_000, 1_000);
    const store = new S3ContentStore({ endpoint: stall.endpoint, bucket: 'mirror', forcePathStyle: true }, { ...FAST_FAILURE, credentials });
    const body = await store.open(digest);
    expect(body).toMatchObject({ kind: 'stream', size: 1_000_000 });
    const { error, ms } = await settle(() => streamBytes(streamOf(body)));
    expect(error).toBeInstanceOf(Error);
    expect(ms).toBeLessThan(5_000);
    await store.close();
    await stall.close();
  });
});

describe('AWS_CA_BUNDLE', () => {
  it('is not even read for a plain http endpoint; for https it must name a readable PEM file', () => {
    expect(trustedCertificates('http://127.0.0.1:9', { AWS_CA_BUNDLE: '/nonexistent/ca.pem' })).toBeUndefined();
    expect(trustedCertificates('https://127.0.0.1:9', {})).toBeUndefined();
    expect(() => trustedCertificates('https://127.0.0.1:9', { AWS_CA_BUNDLE: '/nonexistent/ca.pem' })).toThrow(S3ConfigError);
    expect(() => trustedCertificates(undefined, { AWS_CA_BUNDLE: '/nonexistent/ca.pem' })).toThrow(/AWS_CA_BUNDLE/);
    expect(() => trustedCertificates('https://127.0.0.1:9', { AWS_CA_BUNDLE: '/etc/hostname' })).toThrow(/no PEM certificate/);
  });
});

describe.skipIf(!s3.available)('S3 content store on the real gateway: redirects, TLS, a gateway going down', () => {
  let fixture: S3Fixture;
  beforeEach(() => {
    fixture = new S3Fixture(s3.target(), s3.prefix());
  });
  afterEach(async () => fixture.close());

  it('redirect mode: a presigned URL that yields the right bytes (ranges too); a tampered signature is refused', async () => {
    const bytes = seededBytes(300_000, 'redirect');
    const store = fixture.store({ redirect: true });
    await (await writeAll(await store.writer(), bytes)).commit(digestOf(bytes));
    const body = await store.open(digestOf(bytes), { allowRedirect: true });
    if (body?.kind !== 'redirect') throw new Error(`expected a redirect, got ${body?.kind}`);
    expect(body.size).toBe(bytes.length);
    expect(new URL(body.url).searchParams.get('X-Amz-Expires')).toBe('300');
    const fetched = await get(body.url);
    expect(fetched.status).toBe(200);
    expect(fetched.body.equals(bytes)).toBe(true);
    const ranged = await get(body.url, { range: 'bytes=1000-1999' });
    expect(ranged.status).toBe(206);
    expect(ranged.body.equals(bytes.subarray(1000, 2000))).toBe(true);
    const tampered = new URL(body.url);
    const signature = tampered.searchParams.get('X-Amz-Signature')!;
    tampered.searchParams.set('X-Amz-Signature', `${signature[0] === '0' ? '1' : '0'}${signature.slice(1)}`);
    expect((await get(tampered.toString())).status).toBe(403);
    expect(await store.open(digestOf(Buffer.from('absent')), { allowRedirect: true })).toBeUndefined();
    expect(await store.open(digestOf(bytes))).toMatchObject({ kind: 'stream', size: bytes.length });
    expect(await fixture.store().open(digestOf(bytes), { allowRedirect: true })).toMatchObject({ kind: 'stream' });
  });

  it('an https endpoint works when AWS_CA_BUNDLE names its CA, and fails without it (or with the system bundle)', async () => {
    const front = await startTlsFront(fixture.target.endpoint);
    const bytes = seededBytes(100_000, 'tls');
    try {
      const trusting = fixture.store({ endpoint: front.endpoint }, { env: { AWS_CA_BUNDLE: front.caFile } });
      await (await writeAll(await trusting.writer(), bytes)).commit(digestOf(bytes));
      expect((await trusting.read(digestOf(bytes)))?.equals(bytes)).toBe(true);
      const connected = front.accepted;
      for (const env of [{}, { AWS_CA_BUNDLE: '/etc/ssl/certs/ca-certificates.crt' }]) {
        const untrusting = fixture.store({ endpoint: front.endpoint }, { ...FAST_FAILURE, env });
        await expect(untrusting.stat(digestOf(bytes))).rejects.toThrow(/AWS_CA_BUNDLE/);
        await expect(untrusting.stat(digestOf(bytes))).rejects.toBeInstanceOf(UpstreamUnavailableError);
      }
      expect(front.accepted).toBe(connected);
      // Plain http: a CA bundle that does not even exist changes nothing (distribution 2.8 panics).
      const plain = fixture.store({}, { env: { AWS_CA_BUNDLE: '/nonexistent/ca.pem' } });
      expect((await plain.read(digestOf(bytes)))?.equals(bytes)).toBe(true);
    } finally {
      await front.close();
    }
  });

  it('a gateway stopped mid-read and mid-write: streams break, every operation rejects promptly', async (context) => {
    // A second gateway on the same cluster, so stopping it takes S3 from no other suite.
    const cephConf = s3.cephConf();
    const noConf = `no ceph.conf to start a second gateway: set ${S3_ENV.cephConf}`;
    if (serviceMissing(!cephConf, noConf) || !cephConf) return context.skip(noConf);
    const gateway = await startExtraGateway(cephConf, `${cephConf.replace(/ceph\.conf$/, '')}log`);
    try {
      const store = fixture.store({ endpoint: gateway.endpoint }, { ...FAST_FAILURE, sizes: { part: 5 * MIB } });
      const bytes = seededBytes(40 * MIB, 'outage');
      await (await writeAll(await store.writer(), bytes, 4 * MIB)).commit(digestOf(bytes));
      const body = await store.open(digestOf(bytes));
      const reading = streamBytes(streamOf(body)).then((read) => read, (error: unknown) => error);
      const writer = await writeAll(await store.writer(), bytes.subarray(0, 6 * MIB));
      await gateway.stop();
      const read = await reading;
      // Either the whole blob had already arrived, or the stream failed: never a clean short end.
      if (Buffer.isBuffer(read)) expect(read.equals(bytes)).toBe(true);
      else expect(read).toBeInstanceOf(Error);
      const { error, ms } = await settle(async () => writeAll(writer, bytes.subarray(6 * MIB, 20 * MIB)));
      expect(error).toBeInstanceOf(UpstreamUnavailableError);
      expect(ms).toBeLessThan(5_000);
      await expectPromptOutage(store, 3_000);
    } finally {
      await gateway.stop();
    }
  });
});
