/**
 * The fleet's upstream rate-limit records (upstream/rate-limits.ts `shareWith`): one plain record
 * per upstream with an expiry, in the replicas' Redis, through keyv and @keyv/redis (keyv's
 * natural shape: get, set with a TTL). Keys: `registry-mirror:rate-limits::<upstream>`.
 *
 * Best effort by design: the non-blocking client neither queues commands nor reconnects in the
 * background, every call gives up after CALL_TIMEOUT_MS, and while Redis is away one call a
 * second tries it. A replica then goes by the limits it saw itself.
 */
import type { RateLimitState, SharedRateLimitRecords } from '../upstream/rate-limits.js';

const NAMESPACE = 'registry-mirror:rate-limits';
const CALL_TIMEOUT_MS = 250;
const RETRY_AFTER_FAILURE_MS = 1_000;

export interface SharedRateLimits extends SharedRateLimitRecords {
  close(): Promise<void>;
}

/** keyv's Redis adapter is loaded only here (a process without Redis never carries it). */
export async function openSharedRateLimits(redisUrl: string): Promise<SharedRateLimits> {
  const { createKeyvNonBlocking } = await import('@keyv/redis');
  const keyv = createKeyvNonBlocking(redisUrl, { namespace: NAMESPACE, connectionTimeout: CALL_TIMEOUT_MS });
  // Failures are answered below (undefined, or a skipped write); the events carry nothing more.
  keyv.on('error', () => {});
  (keyv.store as { on?: (event: string, listener: () => void) => void }).on?.('error', () => {});
  let failedAt = -Infinity;
  const call = async <T>(work: () => Promise<T>): Promise<T | undefined> => {
    if (performance.now() - failedAt < RETRY_AFTER_FAILURE_MS) return undefined;
    try {
      return await withTimeout(work());
    } catch {
      failedAt = performance.now();
      return undefined;
    }
  };
  return {
    get: async (upstream) => (await call(() => keyv.get<RateLimitState>(upstream))) ?? undefined,
    set: async (upstream, state, ttlMs) => void (await call(() => keyv.set(upstream, state, ttlMs))),
    close: async () => {
      await keyv.disconnect().catch(() => {});
    },
  };
}

function withTimeout<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CALL_TIMEOUT_MS} ms`)), CALL_TIMEOUT_MS);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
