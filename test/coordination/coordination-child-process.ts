/**
 * A replica in its own process, for tests that kill it with SIGKILL mid-work (run through tsx):
 *
 *   flight <redisUrl> <keyPrefix> <key> <leaseTtlMs>
 *       owns the flight for <key> with a work that never ends; prints "owning" once it runs
 *   slots <redisUrl> <keyPrefix> <upstream> <maxConcurrent> <slotTtlMs>
 *       holds every slot of <upstream> with fetches that never end; prints "holding" once they all run
 *
 * Either way it then runs until killed, refreshing what it holds.
 */
import { RedisCoordination } from '../../src/coordination/redis-coordination.js';
import { RedisFlights } from '../../src/coordination/redis-flights.js';
import { RedisLeases } from '../../src/coordination/redis-leases.js';
import { RedisSemaphore } from '../../src/coordination/redis-semaphore.js';

const [mode, url, keyPrefix, name, first, second] = process.argv.slice(2);
const never = () => new Promise<never>(() => {});
// Refresh timers are unref'd; this keeps the process alive until it is killed.
setInterval(() => {}, 60_000);

const connection = new RedisCoordination({ url: url!, keyPrefix });
await connection.ready(10_000);

if (mode === 'flight') {
  const flights = new RedisFlights({ leases: new RedisLeases(connection), owner: 'child-replica', leaseTtlMs: Number(first) });
  void flights.run(name!, async () => {
    process.stdout.write('owning\n');
    return never();
  }, { deadlineMs: 600_000 });
} else if (mode === 'slots') {
  const maxConcurrent = Number(first);
  const semaphore = new RedisSemaphore({ redis: connection, maxConcurrent, slotTtlMs: Number(second) });
  let running = 0;
  for (let i = 0; i < maxConcurrent; i += 1) {
    void semaphore.run(name!, async () => {
      running += 1;
      if (running === maxConcurrent) process.stdout.write('holding\n');
      return never();
    });
  }
} else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
