/**
 * Measures the S3 content store on a real S3: peak RSS and MB/s of a cache-fill ingest (64 KiB
 * writes, as from a socket), MB/s of a ranged read, and of resumable ingests (8 MiB and 64 KiB
 * writes: one S3 object per write).
 * Not a test: numbers for a report. Uses MIRROR_TEST_S3_* when set, else starts Ceph itself.
 *
 *   node --expose-gc --import tsx scripts/s3-store-measure.ts [GiB=1] [rangeMiB=256]
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseDigest } from '../src/domain/digest.js';
import { S3ContentStore } from '../src/storage/s3/s3-content-store.js';
import { type S3Target, s3TargetFromEnv, startCephS3 } from '../test/helpers/ceph-s3.js';

const MIB = 2 ** 20;
const WRITE = 64 * 1024;
const POOL = randomBytes(64 * MIB);

/** Byte `i` of the measured blob: the pool, repeated (S3 does not compress). */
function* pieces(size: number, pieceSize: number): Generator<Buffer> {
  for (let offset = 0; offset < size; offset += pieceSize) {
    const start = offset % POOL.length;
    yield POOL.subarray(start, Math.min(start + pieceSize, POOL.length, start + size - offset));
  }
}

function digestOfPieces(size: number) {
  const hash = createHash('sha256');
  for (const piece of pieces(size, WRITE)) hash.update(piece);
  return parseDigest(`sha256:${hash.digest('hex')}`);
}

class RssSampler {
  peak = process.memoryUsage().rss;
  readonly #timer = setInterval(() => this.sample(), 20);
  sample(): void {
    this.peak = Math.max(this.peak, process.memoryUsage().rss);
  }
  stop(): number {
    clearInterval(this.#timer);
    this.sample();
    return this.peak;
  }
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
const rate = (bytes: number, ms: number) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;

async function measure(target: S3Target, size: number, rangeBytes: number): Promise<void> {
  const store = new S3ContentStore(
    { endpoint: target.endpoint, bucket: target.bucket, region: target.region, forcePathStyle: true, prefix: `measure-${Date.now()}/` },
    { credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey } },
  );
  const digest = digestOfPieces(size);
  globalThis.gc?.();
  const baseline = process.memoryUsage().rss;
  const sampler = new RssSampler();
  let started = Date.now();
  const cpu = process.cpuUsage();
  const writer = await store.writer();
  for (const piece of pieces(size, WRITE)) await writer.write(piece);
  const written = Date.now() - started;
  await writer.commit(digest, size);
  const ingest = Date.now() - started;
  const peak = sampler.stop();
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  console.log(`cache-fill ingest of ${mb(size)} MB in ${WRITE / 1024} KiB writes: ${rate(size, ingest)} (writes ${written} ms, commit ${ingest - written} ms), ${cpuSeconds.toFixed(1)} CPU-s in this process (${rate(size, cpuSeconds * 1000)} per CPU-second); RSS baseline ${mb(baseline)} MB, peak ${mb(peak)} MB (+${mb(peak - baseline)} MB)`);

  const start = Math.floor(size / 3);
  started = Date.now();
  const body = await store.open(digest, { range: { start, end: start + rangeBytes - 1 } });
  if (body?.kind !== 'stream') throw new Error('expected a stream');
  let read = 0;
  for await (const chunk of body.stream) read += (chunk as Buffer).length;
  console.log(`ranged read of ${mb(read)} MB: ${rate(read, Date.now() - started)}`);
  await store.delete(digest);

  await measureResumable(store, Math.min(size, 512 * MIB), 8 * MIB);
  await measureResumable(store, 32 * MIB, WRITE);
  await store.close();
}

/** An upload session: every write is stored as its own object before it resolves. */
async function measureResumable(store: S3ContentStore, size: number, writeSize: number): Promise<void> {
  const digest = digestOfPieces(size);
  const started = Date.now();
  const upload = await store.writer({ resumable: true });
  for (const piece of pieces(size, writeSize)) await upload.write(piece);
  const written = Date.now() - started;
  await upload.commit(digest, size);
  console.log(`resumable ingest of ${mb(size)} MB in ${writeSize / 1024} KiB writes: ${rate(size, Date.now() - started)} (writes ${written} ms, commit ${Date.now() - started - written} ms)`);
  await store.delete(digest);
}

async function main(): Promise<void> {
  const size = Number(process.argv[2] ?? 1) * 1024 * MIB;
  const rangeBytes = Number(process.argv[3] ?? 256) * MIB;
  const fromEnv = s3TargetFromEnv();
  const started = fromEnv ? undefined : await startCephS3({ memstoreBytes: 8 * 1024 * MIB, log: (line) => console.error(line) });
  try {
    await measure(fromEnv ?? started!, size, rangeBytes);
  } finally {
    await started?.stop();
  }
}

await main();
