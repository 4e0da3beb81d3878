import { describe, expect, it } from 'vitest';
import { TokenCache, type IssuedToken } from '../../src/upstream/token-cache.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('TokenCache', () => {
  it('shares one in-flight fetch among concurrent callers of a key', async () => {
    const cache = new TokenCache();
    const pending = deferred<IssuedToken>();
    let fetches = 0;
    const fetch = () => (fetches++, pending.promise);
    const waiters = Array.from({ length: 10 }, () => cache.get('k', fetch));
    pending.resolve({ token: 't1', expiresInSeconds: 60 });
    expect(await Promise.all(waiters)).toEqual(Array(10).fill('t1'));
    expect(fetches).toBe(1);
  });

  it('gives every waiter the same error and does not cache failures', async () => {
    const cache = new TokenCache();
    const pending = deferred<IssuedToken>();
    const failure = new Error('token server down');
    const waiters = [cache.get('k', () => pending.promise), cache.get('k', () => pending.promise)];
    pending.reject(failure);
    for (const waiter of waiters) await expect(waiter).rejects.toBe(failure);
    await expect(cache.get('k', async () => ({ token: 't2', expiresInSeconds: 60 }))).resolves.toBe('t2');
  });

  it('reuses a token until a few seconds before expiry, then fetches again', async () => {
    let now = 1_000_000;
    const cache = new TokenCache({ now: () => now });
    let fetches = 0;
    const fetch = async () => ({ token: `t${++fetches}`, expiresInSeconds: 60 });
    expect(await cache.get('k', fetch)).toBe('t1');
    now += 54_000;
    expect(await cache.get('k', fetch)).toBe('t1');
    now += 1_000; // 55 s: inside the early-expiry margin
    expect(await cache.get('k', fetch)).toBe('t2');
    expect(fetches).toBe(2);
  });

  it('keys tokens separately and invalidates only the token that was rejected', async () => {
    const cache = new TokenCache();
    let fetches = 0;
    const fetch = async () => ({ token: `t${++fetches}`, expiresInSeconds: 60 });
    expect(await cache.get('a', fetch)).toBe('t1');
    expect(await cache.get('b', fetch)).toBe('t2');
    cache.invalidate('a', 'stale-token');
    expect(await cache.get('a', fetch)).toBe('t1');
    cache.invalidate('a', 't1');
    expect(await cache.get('a', fetch)).toBe('t3');
    expect(await cache.get('b', fetch)).toBe('t2');
  });
});
