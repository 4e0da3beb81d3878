/**
 * How this process coordinates with the others serving the same content (issue 15 items 4 and
 * 9), picked from the config; compose.ts asks here instead of building flights, the upstream
 * bound and blob downloads itself.
 *
 *   alone           LocalFlights, UpstreamLimiter, BlobDownloads: the single-process mirror.
 *   replicas        metadata.store "redis": leases in Redis (RedisFlights for manifests, tag
 *                   revalidation and access probes; FleetBlobDownloads for blobs), the upstream
 *                   bound across the fleet (RedisSemaphore), and with MIRROR_CLUSTER_SECRET and
 *                   cluster.advertiseUrl, losers stream the owner's download (fleet-routes.ts).
 *   workers         `serve --workers N`: the same, with the leases and slots kept by the primary
 *                   process (worker-coordination.ts); with Redis too, both, the machine's first.
 *
 * Token fetches stay per process (upstream/token-cache.ts): a token is cheap and its holder's.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { MirrorConfig } from '../config/mirror-config.js';
import { LocalFlights, type Flights } from '../coordination/flights.js';
import { RedisFlights } from '../coordination/redis-flights.js';
import { RedisLeases } from '../coordination/redis-leases.js';
import { RedisSemaphore } from '../coordination/redis-semaphore.js';
import type { DownloadStores } from '../pull-through/blob-download.js';
import { BlobDownloads, type BlobDownloadsOptions } from '../pull-through/blob-downloads.js';
import { UpstreamLimiter, type UpstreamConcurrency } from '../pull-through/upstream-limiter.js';
import { clusterSecretFrom } from './cluster-auth.js';
import { FleetBlobDownloads, type LeaseLevel } from './fleet-downloads.js';
import { mountFleetRoutes } from './fleet-routes.js';
import { PeerClient } from './peer-client.js';
import { workerCoordination, type WorkerIdentity } from './worker-coordination.js';

const REDIS_READY_MS = 5_000;

export interface Fleet {
  /** `alone`, `replicas` or `workers`. */
  readonly mode: 'alone' | 'replicas' | 'workers';
  /** Manifests, tag revalidation, tag lists and access probes. */
  readonly flights: Flights;
  /** The upstream concurrency bound (`fetch.maxConcurrent`). */
  readonly limiter: UpstreamConcurrency;
  /** Blob downloads; `peerStores` is where a download streamed from another process lands. */
  downloads(options: BlobDownloadsOptions, peerStores: DownloadStores): BlobDownloads;
  /** Mounts the internal endpoint, when a secret is configured (after `downloads`). */
  mountRoutes?(app: Hono): void;
  close(): Promise<void>;
}

/** One level of coordination (fleet-downloads.ts LeaseLevel), with the upstream bound it brings. */
export interface FleetLevel {
  level: LeaseLevel;
  limiter: UpstreamConcurrency;
  close(): Promise<void>;
}

export interface FleetOptions {
  /** Set in a worker of `serve --workers N`. */
  worker?: WorkerIdentity;
  env?: NodeJS.ProcessEnv;
}

/**
 * Levels narrowest first: the workers of this machine (through their primary), then the replicas
 * (through Redis). Manifest flights and the upstream bound use the widest level there is; blob
 * downloads use every level (fleet-downloads.ts).
 */
export async function openFleet(config: MirrorConfig, log: Logger, { worker, env = process.env }: FleetOptions = {}): Promise<Fleet> {
  const clusterSecret = clusterSecretFrom(env);
  const levels = [workerCoordination(worker), config.metadata.store === 'redis' ? await redisLevel(config, clusterSecret, log) : undefined].filter((level) => level !== undefined);
  if (levels.length === 0) return aloneFleet(config);
  return coordinatedFleet(config, levels, worker?.secret ?? clusterSecret, log);
}

function aloneFleet(config: MirrorConfig): Fleet {
  return {
    mode: 'alone',
    flights: new LocalFlights(),
    limiter: new UpstreamLimiter(config.fetch.maxConcurrent, config.fetch.maxQueued),
    downloads: (options) => new BlobDownloads(options),
    close: async () => {},
  };
}

/** The Redis client is loaded only here: it adds megabytes to a process that never uses it. */
async function redisLevel(config: MirrorConfig, secret: string | undefined, log: Logger): Promise<FleetLevel> {
  const { RedisCoordination } = await import('../coordination/redis-coordination.js');
  const redis = new RedisCoordination({ url: config.metadata.redisUrl!, onError: () => {} });
  // The metadata store has just connected to the same Redis; waiting here keeps the first
  // requests from finding coordination still connecting (they would download alone).
  await redis.ready(REDIS_READY_MS).catch((error: unknown) => log.warn({ err: error }, 'coordination Redis not connected yet: coordinating within this process until it is'));
  const advertiseUrl = config.cluster.advertiseUrl;
  if (advertiseUrl && !secret) log.warn({}, 'cluster.advertiseUrl is set but MIRROR_CLUSTER_SECRET is not: replicas wait for each other\'s downloads instead of streaming them');
  const streams = advertiseUrl !== undefined && secret !== undefined;
  // Without an address the others can use, the owner string only has to be unique.
  const owner = streams ? advertiseUrl : `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  return {
    level: { name: 'replicas', leases: new RedisLeases(redis), owner, streams },
    limiter: new RedisSemaphore({ redis, maxConcurrent: config.fetch.maxConcurrent, log }),
    close: () => redis.close(),
  };
}

function coordinatedFleet(config: MirrorConfig, levels: FleetLevel[], secret: string | undefined, log: Logger): Fleet {
  const widest = levels[levels.length - 1]!;
  const { connectTimeoutSeconds, headersTimeoutSeconds, idleTimeoutSeconds } = config.fetch;
  const streaming = secret !== undefined && levels.some(({ level }) => level.streams);
  const peers = streaming ? new PeerClient(secret, { connectMs: connectTimeoutSeconds * 1000, headersMs: headersTimeoutSeconds * 1000, idleMs: idleTimeoutSeconds * 1000 }) : undefined;
  let created: FleetBlobDownloads | undefined;
  return {
    mode: widest.level.name,
    flights: new RedisFlights({ leases: widest.level.leases, owner: widest.level.owner, log }),
    limiter: widest.limiter,
    downloads(options, peerStores) {
      created = new FleetBlobDownloads({ ...options, levels: levels.map(({ level }) => level), peers, peerStores, sharedStoreRoot: sharedStoreRoot(config), log });
      return created;
    },
    mountRoutes: secret === undefined ? undefined : (app) => {
      if (created) mountFleetRoutes(app, { secret, downloads: created, peers, sendfile: config.sendfile });
    },
    async close() {
      await peers?.close();
      for (const level of levels) await level.close();
    },
  };
}

/** The directory the filesystem store keeps its files in, which the workers of a machine share; none in a bucket. */
function sharedStoreRoot(config: MirrorConfig): string | undefined {
  return config.storage.driver === 's3' ? undefined : path.resolve(config.cache.dir);
}
