/**
 * Rate-limit state shared by replicas (issue 15 item 3) through keyv on a real Redis: a 429 one
 * replica gets holds back the other's manifest GETs until its Retry-After has passed; the record
 * expires in Redis on its own; with Redis gone every call settles promptly and each replica goes
 * by what it saw itself.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TooManyRequestsError } from '../../src/domain/errors.js';
import { openSharedRateLimits, type SharedRateLimits } from '../../src/replicas/shared-rate-limits.js';
import { UpstreamRateLimits } from '../../src/upstream/rate-limits.js';
import type { UpstreamResponseInfo } from '../../src/upstream/upstream-registry.js';
import { redisServerInstalled, startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const rateLimited: UpstreamResponseInfo = { upstream: 'docker.io', method: 'GET', kind: 'manifest', status: 429, durationMs: 5, headers: { 'retry-after': '30', 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '0;w=21600' } };

describe.skipIf(!redisServerInstalled())('rate limits shared through Redis', () => {
  let server: RedisServer;
  const opened: SharedRateLimits[] = [];
  const open = async () => {
    const records = await openSharedRateLimits(server.url);
    opened.push(records);
    return records;
  };
  beforeAll(async () => {
    server = await startRedisServer();
  });
  afterAll(async () => {
    await Promise.all(opened.map((records) => records.close()));
    await server?.stop();
  });

  it('a 429 seen by one replica blocks manifest GETs on another, with the record expiring in Redis', async () => {
    const a = new UpstreamRateLimits();
    const b = new UpstreamRateLimits();
    a.shareWith(await open());
    b.shareWith(await open());
    a.observe(rateLimited);
    const admin = new Redis(server.url);
    try {
      for (let attempt = 0; attempt < 50 && (await admin.exists('registry-mirror:rate-limits::docker.io')) === 0; attempt++) await new Promise((resolve) => setTimeout(resolve, 20));
      const ttl = await admin.pttl('registry-mirror:rate-limits::docker.io');
      expect(ttl).toBeGreaterThan(80_000);
      expect(ttl).toBeLessThanOrEqual(90_000);
    } finally {
      admin.disconnect();
    }
    expect(() => b.assertManifestGetAllowed('docker.io', 'GET x')).not.toThrow();
    await b.refresh('docker.io');
    expect(() => b.assertManifestGetAllowed('docker.io', 'GET x')).toThrow(TooManyRequestsError);
    expect(b.secondsBlocked('docker.io')).toBeGreaterThan(25);
    expect(b.snapshot()[0]).toMatchObject({ limit: 100, remaining: 0 });
    await b.refresh('ghcr.io');
    expect(() => b.assertManifestGetAllowed('ghcr.io', 'GET x')).not.toThrow();
  });

  it('with Redis down: refresh and observe settle within a second and change nothing', async () => {
    const records = await open();
    const limits = new UpstreamRateLimits();
    limits.shareWith(records);
    await server.stop();
    try {
      const started = performance.now();
      limits.observe(rateLimited);
      await limits.refresh('docker.io');
      await limits.refresh('docker.io');
      expect(performance.now() - started).toBeLessThan(2_000);
      expect(limits.secondsBlocked('docker.io')).toBe(30);
      expect(await records.get('docker.io')).toBeUndefined();
    } finally {
      await server.restart();
    }
  });
});
