/**
 * The flights contract against RedisFlights on a real redis-server: one server for the file, a
 * fresh key prefix and connection per test. Every test must have coordinated through Redis: a
 * flight that fell back to in-process coordination would pass the contract without testing it,
 * so any outage warning fails the test.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RedisCoordination } from '../../src/coordination/redis-coordination.js';
import { RedisFlights } from '../../src/coordination/redis-flights.js';
import { RedisLeases } from '../../src/coordination/redis-leases.js';
import { REDIS_SKIP_MESSAGE, redisServerInstalled, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { flightsContract } from './flights.contract.js';

if (!redisServerInstalled()) {
  describe('Flights contract: redis', () => {
    it.skip(REDIS_SKIP_MESSAGE, () => {});
  });
} else {
  let server: RedisServer;
  let connection: RedisCoordination;
  const warnings: string[] = [];
  const log = { warn: (_: object, message: string) => void warnings.push(message), info: () => {} };

  beforeAll(async () => {
    server = await startRedisServer();
  });
  beforeEach(async () => {
    connection = new RedisCoordination({ url: server.url, keyPrefix: `flights-${randomUUID()}:` });
    await connection.ready(5_000);
  });
  afterEach(async () => {
    await connection.close();
    expect(warnings.splice(0)).toEqual([]);
  });
  afterAll(() => server?.stop());

  flightsContract('redis', () => new RedisFlights({ leases: new RedisLeases(connection), owner: 'http://127.0.0.1:1/', log }));
}
