/**
 * Replicas (issue 15, done-when 1): three replicas sharing one bucket (the bench's Ceph RGW) and
 * one Redis; 60 clients, 20 per replica, GET the same uncached ~120 MiB layer at the same instant
 * and verify its sha256. Reported: blob GETs that reached hub and its CDN for the whole fleet
 * (target: exactly 1), and the time to first byte of the clients of the replicas that did not
 * own the download (target: under 2 s: they stream it). The same for the reference, three
 * distribution 2.8 proxies on the same S3 and Redis (it has no owner: every client's first byte).
 *
 * Ceph comes from MIRROR_TEST_S3_* when set (scripts/ceph-s3.ts start), else this scenario starts
 * one (about 15 s) and stops it; Redis is started here and emptied between the two fleets.
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { type CephS3, s3TargetFromEnv, startCephS3, type S3Target } from '../../helpers/ceph-s3.js';
import { startRedisServer, type RedisServer } from '../../helpers/redis-server.js';
import { runLoad, type HerdOutcome } from '../load.js';
import type { BenchContext } from '../context.js';
import { startMirrorFleet, startReferenceFleet, type Fleet, type FleetBackends } from '../fleets.js';
import { MiB, round, spread } from '../stats.js';

const CLIENTS_PER_REPLICA = 20;
const HERD_DEADLINE_MS = 600_000;
/** Time given to the client processes to boot and connect before the herds start together. */
const CLIENT_BOOT_MS = 5_000;

export async function replicas(context: BenchContext): Promise<void> {
  const root = join(context.env.seedDir, '..', 'replicas');
  let ceph: CephS3 | undefined;
  let s3: S3Target | undefined = s3TargetFromEnv();
  if (!s3) {
    context.log('replicas: starting a Ceph RADOS Gateway (set MIRROR_TEST_S3_* to reuse one)');
    ceph = await startCephS3({ log: context.log });
    s3 = ceph;
  }
  const redis = await startRedisServer();
  try {
    const backends: FleetBackends = { s3, redisUrl: redis.url };
    for (const start of [startMirrorFleet, startReferenceFleet]) {
      const fleet = await start(root, context.env, backends);
      try {
        await measure(context, fleet, redis);
      } finally {
        await fleet.stop();
        await redis.restart();
      }
    }
  } finally {
    await redis.stop();
    await ceph?.stop();
  }
}

async function measure(context: BenchContext, fleet: Fleet, redis: RedisServer): Promise<void> {
  const blob = context.env.app.layers[0]!;
  context.log(`replicas: ${fleet.name}, ${fleet.urls.length} replicas x ${CLIENTS_PER_REPLICA} clients, ${round(blob.size / MiB)} MiB blob`);
  // A replica listens before it has opened its stores (requests wait for them): let every one
  // finish starting, so the herds start together and measure pulls, not start-ups.
  await Promise.all(fleet.urls.map(async (base) => (await fetch(`${base}/v2/`, { signal: AbortSignal.timeout(60_000) })).arrayBuffer()));
  const mark = context.meter.mark();
  // One client process per replica: they boot (and compile) first, then every herd starts at
  // the same instant, so no replica's first bytes are measured against the others' start-up.
  const startAt = Date.now() + CLIENT_BOOT_MS;
  const herds = fleet.urls.map((base) => runLoad<HerdOutcome>({ kind: 'herd', base, repo: context.env.app.repo, digest: blob.digest, size: blob.size, clients: CLIENTS_PER_REPLICA, verify: true, startAt }, HERD_DEADLINE_MS));
  const owner = fleet.name === 'mirror' ? await leaseOwner(redis.url, `blob ${blob.digest}`) : undefined;
  const outcomes = await Promise.all(herds);
  const wallMs = Date.now() - startAt;
  await context.meter.settle(1_500, 180_000);
  const gets = context.meter.blobGets(mark, blob.digest);
  const others = outcomes.filter((_, index) => fleet.urls[index] !== owner);
  context.emit({
    bench: 'replicas',
    target: fleet.name,
    replicas: fleet.urls.length,
    clients: fleet.urls.length * CLIENTS_PER_REPLICA,
    blob_bytes: blob.size,
    ok_clients: outcomes.reduce((sum, outcome) => sum + outcome.clientMs.length, 0),
    failures: outcomes.flatMap((outcome) => outcome.failures),
    wall_ms: Math.round(wallMs),
    owner_replica: owner === undefined ? null : fleet.urls.indexOf(owner),
    ttfb_ms: spread(outcomes.flatMap((outcome) => outcome.ttfbMs)),
    non_owner_ttfb_ms: spread(others.flatMap((outcome) => outcome.ttfbMs)),
    client_ms: spread(outcomes.flatMap((outcome) => outcome.clientMs)),
    upstream_blob_gets: { hub: gets.hub, cdn: gets.cdn, hub_heads: gets.hubHeads, hub_401: gets.hubChallenges },
    upstream: context.meter.since(mark),
  });
}

/** The owner string of a mirror lease, read from Redis while the herd runs; undefined if none shows. */
async function leaseOwner(redisUrl: string, key: string): Promise<string | undefined> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    for (let attempt = 0; attempt < 3_000; attempt++) {
      const value = await redis.get(`registry-mirror:lease:${key}`);
      if (value) return value.slice(value.indexOf(' ') + 1);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return undefined;
  } finally {
    redis.disconnect();
  }
}
