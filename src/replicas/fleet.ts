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
 *   workers         `serve --workers N` without Redis: the same, with the leases and slots kept
 *                   by the primary process (worker-coordination.ts).
 *
 * Token fetches stay per process (upstream/token-cache.ts): a token is cheap and its holder's.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { MirrorConfig } from '../config/mirror-config.js';
import { LocalFlights, type Flights } from '../coordination/flights.js';
import { RedisFlights } from '../coordination/redis-flights.js';
import { RedisLeases, type Leases } from '../coordination/redis-leases.js';
import { RedisSemaphore } from '../coordination/redis-semaphore.js';
import type { DownloadStores } from '../pull-through/blob-download.js';
import { BlobDownloads, type BlobDownloadsOptions } from '../pull-through/blob-downloads.js';
import { UpstreamLimiter, type UpstreamConcurrency } from '../pull-through/upstream-limiter.js';
import { clusterSecretFrom } from './cluster-auth.js';
import { FleetBlobDownloads } from './fleet-downloads.js';
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

/** What a coordinated fleet is built from: leases, the bound, and who this process is. */
export interface FleetParts {
  mode: 'replicas' | 'workers';
  leases: Leases;
  limiter: UpstreamConcurrency;
  /** Where the others reach this process, when they may stream from it. */
  advertiseUrl?: string;
  secret?: string;
  close(): Promise<void>;
}

export interface FleetOptions {
  /** Set in a worker of `serve --workers N`. */
  worker?: WorkerIdentity;
  env?: NodeJS.ProcessEnv;
}

/**
 * With Redis, every process (every worker of every replica) is a member of the one fleet; its
 * leases name `cluster.advertiseUrl`, so the other workers of its own machine wait for its
 * downloads rather than stream them. Without Redis, the workers of one machine coordinate
 * through their primary.
 */
export async function openFleet(config: MirrorConfig, log: Logger, { worker, env = process.env }: FleetOptions = {}): Promise<Fleet> {
  const parts = config.metadata.store === 'redis' ? await redisParts(config, log, env) : workerCoordination(worker);
  if (!parts) return aloneFleet(config);
  return coordinatedFleet(config, parts, log);
}

function aloneFleet(config: MirrorConfig): Fleet {
  return {
    mode: 'alone',
    flights: new LocalFlights(),
    limiter: new UpstreamLimiter(config.fetch.maxConcurrent),
    downloads: (options) => new BlobDownloads(options),
    close: async () => {},
  };
}

/** The Redis client is loaded only here: it adds megabytes to a process that never uses it. */
async function redisParts(config: MirrorConfig, log: Logger, env: NodeJS.ProcessEnv): Promise<FleetParts> {
  const { RedisCoordination } = await import('../coordination/redis-coordination.js');
  const redis = new RedisCoordination({ url: config.metadata.redisUrl!, onError: () => {} });
  // The metadata store has just connected to the same Redis; waiting here keeps the first
  // requests from finding coordination still connecting (they would download alone).
  await redis.ready(REDIS_READY_MS).catch((error: unknown) => log.warn({ err: error }, 'coordination Redis not connected yet: coordinating within this process until it is'));
  const secret = clusterSecretFrom(env);
  const advertiseUrl = config.cluster.advertiseUrl;
  if (advertiseUrl && !secret) log.warn({}, 'cluster.advertiseUrl is set but MIRROR_CLUSTER_SECRET is not: replicas wait for each other\'s downloads instead of streaming them');
  const limiter = new RedisSemaphore({ redis, maxConcurrent: config.fetch.maxConcurrent, log });
  return { mode: 'replicas', leases: new RedisLeases(redis), limiter, advertiseUrl, secret, close: () => redis.close() };
}

function coordinatedFleet(config: MirrorConfig, parts: FleetParts, log: Logger): Fleet {
  const streaming = parts.advertiseUrl !== undefined && parts.secret !== undefined;
  // Without an address others can use, the owner string only has to be unique.
  const owner = streaming ? parts.advertiseUrl! : `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  const { connectTimeoutSeconds, headersTimeoutSeconds, idleTimeoutSeconds } = config.fetch;
  const peers = streaming ? new PeerClient(parts.secret!, { connectMs: connectTimeoutSeconds * 1000, headersMs: headersTimeoutSeconds * 1000, idleMs: idleTimeoutSeconds * 1000 }) : undefined;
  let created: FleetBlobDownloads | undefined;
  const secret = parts.secret;
  return {
    mode: parts.mode,
    flights: new RedisFlights({ leases: parts.leases, owner, log }),
    limiter: parts.limiter,
    downloads(options, peerStores) {
      created = new FleetBlobDownloads({ ...options, leases: parts.leases, owner, peers, peerStores, log });
      return created;
    },
    mountRoutes: secret === undefined ? undefined : (app) => {
      if (created) mountFleetRoutes(app, { secret, downloads: created, sendfile: config.sendfile });
    },
    async close() {
      await peers?.close();
      await parts.close();
    },
  };
}
