/**
 * The contract every Flights implementation keeps (src/coordination/flights.ts): one run of the
 * work per key at a time, the same outcome for every waiter (errors included), a deadline that
 * aborts the work's signal and answers the waiters, and `hold` keeping a flight open until its
 * value settles.
 */
import { describe, expect, it } from 'vitest';
import type { Flights } from '../../src/coordination/flights.js';
import { DeadlineExceededError } from '../../src/domain/errors.js';

const LONG = { deadlineMs: 10_000 };

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

export function flightsContract(name: string, make: () => Flights): void {
  describe(`Flights contract: ${name}`, () => {
    it('runs the work once for concurrent callers of one key; every caller gets its value', async () => {
      const flights = make();
      const gate = deferred<string>();
      let runs = 0;
      const work = async () => {
        runs += 1;
        return gate.promise;
      };
      const waiters = Array.from({ length: 5 }, () => flights.run('k', work, LONG));
      gate.resolve('value');
      expect(await Promise.all(waiters)).toEqual(['value', 'value', 'value', 'value', 'value']);
      expect(runs).toBe(1);
    });

    it('shares a failure with every waiter, and runs afresh after it', async () => {
      const flights = make();
      let runs = 0;
      const failing = async () => {
        runs += 1;
        throw new Error(`failure ${runs}`);
      };
      const results = await Promise.allSettled([flights.run('k', failing, LONG), flights.run('k', failing, LONG)]);
      expect(results.map((result) => (result as PromiseRejectedResult).reason.message)).toEqual(['failure 1', 'failure 1']);
      await expect(flights.run('k', failing, LONG)).rejects.toThrow('failure 2');
      const throwsAtOnce = (() => {
        throw new Error('synchronous');
      }) as () => Promise<never>;
      await expect(flights.run('k', throwsAtOnce, LONG)).rejects.toThrow('synchronous');
    });

    it('keeps keys apart, and runs a key again once its flight settled', async () => {
      const flights = make();
      let runs = 0;
      const work = async () => ++runs;
      expect(await Promise.all([flights.run('a', work, LONG), flights.run('b', work, LONG)])).toEqual([1, 2]);
      expect(await flights.run('a', work, LONG)).toBe(3);
    });

    it('at the deadline: aborts the work\'s signal and answers every waiter with DeadlineExceededError', async () => {
      const flights = make();
      let signal: AbortSignal | undefined;
      const never = (given: AbortSignal) => {
        signal = given;
        return new Promise<never>(() => {});
      };
      const waiters = [flights.run('slow', never, { deadlineMs: 50 }), flights.run('slow', never, { deadlineMs: 50 })];
      for (const waiter of waiters) await expect(waiter).rejects.toBeInstanceOf(DeadlineExceededError);
      expect(signal?.aborted).toBe(true);
      expect(signal?.reason).toBeInstanceOf(DeadlineExceededError);
      expect(await flights.run('slow', async () => 'fresh', LONG)).toBe('fresh');
    });

    it('hold: joiners get the same value until it settles; then the work runs again', async () => {
      const flights = make();
      const landing = deferred<void>();
      let runs = 0;
      const start = async () => ({ id: ++runs, settled: landing.promise });
      const first = await flights.hold('download', start, LONG);
      const joined = await flights.hold('download', start, LONG);
      expect(joined).toBe(first);
      expect(runs).toBe(1);
      landing.resolve();
      await landing.promise;
      await new Promise((resolve) => setImmediate(resolve));
      const next = await flights.hold('download', async () => ({ id: ++runs, settled: Promise.resolve() }), LONG);
      expect(next.id).toBe(2);
    });

    it('hold: a value whose settling fails ends the flight too; the deadline covers the held part', async () => {
      const flights = make();
      const failed = deferred<void>();
      failed.promise.catch(() => {});
      await flights.hold('k', async () => ({ settled: failed.promise }), LONG);
      failed.reject(new Error('fill failed'));
      await new Promise((resolve) => setImmediate(resolve));
      let runs = 0;
      let signal: AbortSignal | undefined;
      await flights.hold('k', async (given) => {
        runs += 1;
        signal = given;
        return { settled: new Promise<void>(() => {}) };
      }, { deadlineMs: 50 });
      expect(runs).toBe(1);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(signal?.aborted).toBe(true);
      await flights.hold('k', async () => ({ settled: Promise.resolve() }), LONG);
      expect(runs).toBe(1);
    });
  });
}
