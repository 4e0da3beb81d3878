/**
 * The second half of the MetadataStore contract (metadata-store.contract.ts is the entry): the
 * blob index and its LRU order, upload sessions, access verdicts with their TTL, usage counters,
 * and several store instances sharing one backend (processes or replicas).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { UploadSession, UsageCounts } from '../../src/metadata/metadata-store.js';
import { collect, digestOf, tagRecord, type ContractContext } from './metadata-fixtures.js';

export function describeRecordsContract(context: ContractContext): void {
  describeBlobsContract(context);
  describeUploadsContract(context);
  describeVerdictsContract(context);
  describeUsageContract(context);
  describeSharingContract(context);
}

function describeBlobsContract(context: ContractContext): void {
  describe('blobs', () => {
    it('put records size, usedAt (default now) and retained (default false); get of an unknown digest is undefined', async () => {
      const { blobs } = context.store;
      expect(await blobs.get(digestOf(1))).toBeUndefined();
      const before = Date.now();
      await blobs.put(digestOf(1), 100);
      const after = Date.now();
      const record = await blobs.get(digestOf(1));
      expect(record).toMatchObject({ digest: digestOf(1), size: 100, retained: false });
      expect(record!.usedAt).toBeGreaterThanOrEqual(before);
      expect(record!.usedAt).toBeLessThanOrEqual(after);
      await blobs.put(digestOf(2), 200, { retained: true, usedAt: 5_000 });
      expect(await blobs.get(digestOf(2))).toStrictEqual({ digest: digestOf(2), size: 200, usedAt: 5_000, retained: true });
    });

    it('a re-put keeps usedAt and retained unless given; retained stays true until set false', async () => {
      const { blobs } = context.store;
      await blobs.put(digestOf(1), 100, { usedAt: 1_000, retained: true });
      await blobs.put(digestOf(1), 150);
      expect(await blobs.get(digestOf(1))).toStrictEqual({ digest: digestOf(1), size: 150, usedAt: 1_000, retained: true });
      await blobs.put(digestOf(1), 150, { usedAt: 2_000 });
      expect(await blobs.get(digestOf(1))).toStrictEqual({ digest: digestOf(1), size: 150, usedAt: 2_000, retained: true });
      await blobs.put(digestOf(1), 150, { retained: false });
      expect(await blobs.get(digestOf(1))).toStrictEqual({ digest: digestOf(1), size: 150, usedAt: 2_000, retained: false });
    });

    it('touch moves usedAt forward only and ignores unknown digests', async () => {
      const { blobs } = context.store;
      await blobs.put(digestOf(1), 10, { usedAt: 1_000 });
      await blobs.put(digestOf(2), 10, { usedAt: 5_000, retained: true });
      await blobs.touch([digestOf(1), digestOf(2), digestOf(3)], 3_000);
      expect((await blobs.get(digestOf(1)))!.usedAt).toBe(3_000);
      expect((await blobs.get(digestOf(2)))!.usedAt).toBe(5_000);
      expect(await blobs.get(digestOf(3))).toBeUndefined();
      await blobs.touch([digestOf(1)], 2_000);
      expect((await blobs.get(digestOf(1)))!.usedAt).toBe(3_000);
      await blobs.touch([], 9_000);
      expect(await blobs.totals()).toEqual({ count: 2, bytes: 20, retainedBytes: 10 });
    });

    it('leastRecentlyUsed: not retained only, oldest first (ties by digest), at most limit', async () => {
      const { blobs } = context.store;
      await blobs.put(digestOf(5), 1, { usedAt: 300 });
      await blobs.put(digestOf(4), 1, { usedAt: 100 });
      await blobs.put(digestOf(3), 1, { usedAt: 200 });
      await blobs.put(digestOf(2), 1, { usedAt: 200 });
      await blobs.put(digestOf(1), 1, { usedAt: 50, retained: true });
      const digests = async (limit: number) => (await blobs.leastRecentlyUsed(limit)).map((record) => record.digest);
      expect(await digests(10)).toEqual([digestOf(4), digestOf(2), digestOf(3), digestOf(5)]);
      expect(await digests(2)).toEqual([digestOf(4), digestOf(2)]);
      expect(await digests(0)).toEqual([]);
      expect((await blobs.leastRecentlyUsed(1))[0]).toStrictEqual({ digest: digestOf(4), size: 1, usedAt: 100, retained: false });
      await blobs.touch([digestOf(4)], 400);
      await blobs.setRetained([digestOf(2)], true);
      await blobs.setRetained([digestOf(1)], false);
      expect(await digests(10)).toEqual([digestOf(1), digestOf(3), digestOf(5), digestOf(4)]);
    });

    it('setRetained flips the flag for known digests and ignores unknown ones', async () => {
      const { blobs } = context.store;
      await blobs.put(digestOf(1), 10);
      await blobs.setRetained([digestOf(1), digestOf(9)], true);
      expect((await blobs.get(digestOf(1)))!.retained).toBe(true);
      expect(await blobs.get(digestOf(9))).toBeUndefined();
      await blobs.setRetained([digestOf(1)], true);
      await blobs.setRetained([digestOf(1)], false);
      expect((await blobs.get(digestOf(1)))!.retained).toBe(false);
    });

    it('delete says whether the record existed', async () => {
      const { blobs } = context.store;
      await blobs.put(digestOf(1), 10);
      expect(await blobs.delete(digestOf(1))).toBe(true);
      expect(await blobs.delete(digestOf(1))).toBe(false);
      expect(await blobs.get(digestOf(1))).toBeUndefined();
      expect(await blobs.leastRecentlyUsed(10)).toEqual([]);
    });

    it('totals follow puts, re-puts with a new size, retain and release, and deletes', async () => {
      const { blobs } = context.store;
      expect(await blobs.totals()).toEqual({ count: 0, bytes: 0, retainedBytes: 0 });
      await blobs.put(digestOf(1), 100);
      await blobs.put(digestOf(2), 1_000, { retained: true });
      await blobs.put(digestOf(3), 10_000);
      expect(await blobs.totals()).toEqual({ count: 3, bytes: 11_100, retainedBytes: 1_000 });
      await blobs.put(digestOf(2), 2_000);
      expect(await blobs.totals()).toEqual({ count: 3, bytes: 12_100, retainedBytes: 2_000 });
      await blobs.setRetained([digestOf(1), digestOf(3)], true);
      await blobs.setRetained([digestOf(3)], true);
      expect(await blobs.totals()).toEqual({ count: 3, bytes: 12_100, retainedBytes: 12_100 });
      await blobs.setRetained([digestOf(2)], false);
      await blobs.put(digestOf(3), 20_000, { retained: false });
      expect(await blobs.totals()).toEqual({ count: 3, bytes: 22_100, retainedBytes: 100 });
      await blobs.delete(digestOf(1));
      await blobs.delete(digestOf(404));
      expect(await blobs.totals()).toEqual({ count: 2, bytes: 22_000, retainedBytes: 0 });
    });

    it('entries yields every record once', async () => {
      const { blobs } = context.store;
      for (let i = 0; i < 1_050; i += 1) await blobs.put(digestOf(i), i, { usedAt: i, retained: i % 2 === 0 });
      const seen = await collect(blobs.entries());
      expect(seen.map((record) => record.digest).sort()).toEqual(Array.from({ length: 1_050 }, (_, i) => digestOf(i)));
      expect(seen.find((record) => record.digest === digestOf(7))).toStrictEqual({ digest: digestOf(7), size: 7, usedAt: 7, retained: false });
    });
  });
}

function session(id: string, updatedAt: number, offset = 0): UploadSession {
  return { id, repository: 'team/app', writerId: `writer-${id}`, offset, startedAt: 1_000, updatedAt };
}

function describeUploadsContract(context: ContractContext): void {
  describe('uploads', () => {
    it('put, get (copies), update in place and delete (unknown: no-op)', async () => {
      const { uploads } = context.store;
      expect(await uploads.get('u1')).toBeUndefined();
      await uploads.put(session('u1', 2_000));
      expect(await uploads.get('u1')).toStrictEqual(session('u1', 2_000));
      await uploads.put(session('u1', 3_000, 4_096));
      expect(await uploads.get('u1')).toStrictEqual(session('u1', 3_000, 4_096));
      await uploads.delete('u1');
      await uploads.delete('never');
      expect(await uploads.get('u1')).toBeUndefined();
    });

    it('olderThan lists sessions updated strictly before the time', async () => {
      const { uploads } = context.store;
      for (const [id, updatedAt] of [['a', 100], ['b', 200], ['c', 300]] as const) await uploads.put(session(id, updatedAt));
      expect((await uploads.olderThan(200)).map((s) => s.id)).toEqual(['a']);
      expect((await uploads.olderThan(301)).map((s) => s.id).sort()).toEqual(['a', 'b', 'c']);
      expect(await uploads.olderThan(100)).toEqual([]);
      expect(await uploads.olderThan(150)).toStrictEqual([session('a', 100)]);
    });

    it('a claim is one holder\'s until it gives it back or it runs out; its holder may take it again', async () => {
      const { uploads } = context.store;
      await uploads.put(session('u1', 1_000));
      expect(await uploads.claim('u1', 'first', 60_000)).toBe(true);
      expect(await uploads.claim('u1', 'second', 60_000)).toBe(false);
      expect(await uploads.claim('u1', 'first', 60_000)).toBe(true);
      await uploads.unclaim('u1', 'second');
      expect(await uploads.claim('u1', 'second', 60_000)).toBe(false);
      await uploads.unclaim('u1', 'first');
      expect(await uploads.claim('u1', 'second', 50)).toBe(true);
      // A holder that stopped renewing (a process that died): the claim runs out.
      await new Promise((resolve) => setTimeout(resolve, 120));
      expect(await uploads.claim('u1', 'third', 60_000)).toBe(true);
      expect(await uploads.claim('u1', 'second', 60_000)).toBe(false);
      // A session's claims are independent of another's, and go with the session.
      expect(await uploads.claim('u2', 'second', 60_000)).toBe(true);
      await uploads.delete('u1');
      expect(await uploads.claim('u1', 'fourth', 60_000)).toBe(true);
    });
  });
}

function describeVerdictsContract(context: ContractContext): void {
  describe('verdicts', () => {
    it('set then get; a later set replaces; unknown repositories have none', async () => {
      const { verdicts } = context.store;
      expect(await verdicts.get('docker.io/acme/private')).toBeUndefined();
      await verdicts.set('docker.io/acme/private', { readable: false, checkedAt: 1_000 }, 60_000);
      await verdicts.set('docker.io/library/alpine', { readable: true, checkedAt: 2_000 }, 60_000);
      expect(await verdicts.get('docker.io/acme/private')).toStrictEqual({ readable: false, checkedAt: 1_000 });
      expect(await verdicts.get('docker.io/library/alpine')).toStrictEqual({ readable: true, checkedAt: 2_000 });
      await verdicts.set('docker.io/acme/private', { readable: true, checkedAt: 3_000 }, 60_000);
      expect(await verdicts.get('docker.io/acme/private')).toStrictEqual({ readable: true, checkedAt: 3_000 });
    });

    it('a verdict is forgotten after its ttlMs (a wall-clock wait) while longer ones stay', async () => {
      const { verdicts } = context.store;
      await verdicts.set('short', { readable: true, checkedAt: 1 }, 1_000);
      await verdicts.set('long', { readable: true, checkedAt: 2 }, 60_000);
      expect(await verdicts.get('short')).toStrictEqual({ readable: true, checkedAt: 1 });
      await sleep(1_300);
      expect(await verdicts.get('short')).toBeUndefined();
      expect(await verdicts.get('long')).toStrictEqual({ readable: true, checkedAt: 2 });
    });

    it('a ttlMs of zero or less keeps nothing, and replaces what was there', async () => {
      const { verdicts } = context.store;
      await verdicts.set('r', { readable: true, checkedAt: 1 }, 60_000);
      await verdicts.set('r', { readable: false, checkedAt: 2 }, 0);
      await verdicts.set('s', { readable: false, checkedAt: 2 }, -5);
      expect(await verdicts.get('r')).toBeUndefined();
      expect(await verdicts.get('s')).toBeUndefined();
    });
  });
}

function counts(pulls: number, hits: number, misses: number): UsageCounts {
  return { pulls, hits, misses };
}

function describeUsageContract(context: ContractContext): void {
  describe('usage', () => {
    it('an empty store reports zeros, no repositories, and a since not in the future', async () => {
      const report = await context.store.usage.report(10);
      expect(report.totals).toEqual(counts(0, 0, 0));
      expect(report.repositories).toEqual([]);
      expect(report.since).toBeLessThanOrEqual(Date.now());
    });

    it('adds accumulate per repository and in the totals; an empty batch is a no-op', async () => {
      const { usage } = context.store;
      await usage.add(new Map([['a', counts(1, 2, 3)], ['b', counts(0, 5, 0)]]));
      await usage.add(new Map([['a', counts(1, 1, 1)]]));
      await usage.add(new Map());
      const report = await usage.report(10);
      expect(report.totals).toEqual(counts(2, 8, 4));
      expect(report.repositories).toEqual([{ repository: 'a', ...counts(2, 3, 4) }, { repository: 'b', ...counts(0, 5, 0) }]);
    });

    it('report(top) ranks by pulls, then by requests (hits + misses), then by name, and keeps the top', async () => {
      const { usage } = context.store;
      await usage.add(new Map([
        ['few-pulls', counts(1, 100, 100)],
        ['many-pulls', counts(5, 0, 1)],
        ['tie-b', counts(2, 3, 3)],
        ['tie-a', counts(2, 6, 0)],
        ['more-requests', counts(2, 7, 0)],
        ['none', counts(0, 0, 1)],
      ]));
      const ranked = (await usage.report(10)).repositories.map((entry) => entry.repository);
      expect(ranked).toEqual(['many-pulls', 'more-requests', 'tie-a', 'tie-b', 'few-pulls', 'none']);
      const top2 = await usage.report(2);
      expect(top2.repositories.map((entry) => entry.repository)).toEqual(['many-pulls', 'more-requests']);
      expect(top2.totals).toEqual(counts(12, 116, 105));
    });
  });
}

function describeSharingContract(context: ContractContext): void {
  describe('several instances on one backend', () => {
    it('concurrent usage.add from two instances adds up exactly', async () => {
      const [a, b] = [context.store, await context.openAnother()];
      const rounds = 100;
      const batch = () => new Map([['docker.io/library/alpine', counts(1, 2, 0)], ['team/app', counts(0, 1, 1)]]);
      await Promise.all(Array.from({ length: rounds }, (_, i) => (i % 2 === 0 ? a : b).usage.add(batch())).concat(
        Array.from({ length: rounds }, (_, i) => (i % 2 === 0 ? b : a).usage.add(batch()))));
      for (const store of [a, b]) {
        const report = await store.usage.report(10);
        expect(report.totals).toEqual(counts(200, 600, 200));
        expect(report.repositories).toEqual([
          { repository: 'docker.io/library/alpine', ...counts(200, 400, 0) },
          { repository: 'team/app', ...counts(0, 200, 200) },
        ]);
      }
    });

    it('what one instance writes the other reads: tags, catalog, links, blob totals', async () => {
      const [a, b] = [context.store, await context.openAnother()];
      await Promise.all([
        a.tags.setMany(Array.from({ length: 50 }, (_, i) => ({ repository: 'r/a', tag: `t${i}`, record: tagRecord(i) }))),
        b.tags.setMany(Array.from({ length: 50 }, (_, i) => ({ repository: 'r/b', tag: `t${i}`, record: tagRecord(i) }))),
        ...Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).blobs.put(digestOf(i), 10)),
      ]);
      await a.links.add('r/c', digestOf(1));
      for (const store of [a, b]) {
        expect(await store.tags.count()).toEqual({ tags: 100, repositories: 2 });
        expect(await store.catalog.list()).toEqual(['r/a', 'r/b', 'r/c']);
        expect(await store.blobs.totals()).toEqual({ count: 20, bytes: 200, retainedBytes: 0 });
        expect(await store.links.has('r/c', digestOf(1))).toBe(true);
      }
      expect(await b.tags.get('r/a', 't7')).toStrictEqual(tagRecord(7));
    });

    it('blob totals stay equal to the sum of the records under concurrent puts, retains and deletes from two instances', async () => {
      const [a, b] = [context.store, await context.openAnother()];
      const work: Array<Promise<unknown>> = [];
      for (let i = 0; i < 200; i += 1) {
        const store = i % 2 === 0 ? a : b;
        const other = i % 2 === 0 ? b : a;
        work.push(store.blobs.put(digestOf(i % 50), 10 + (i % 7), i % 3 === 0 ? { retained: true } : {}));
        work.push(other.blobs.setRetained([digestOf((i * 7) % 50)], i % 2 === 0));
        if (i % 5 === 0) work.push(other.blobs.delete(digestOf((i * 3) % 50)));
      }
      await Promise.all(work);
      const records = await collect(a.blobs.entries());
      const expected = {
        count: records.length,
        bytes: records.reduce((sum, record) => sum + record.size, 0),
        retainedBytes: records.filter((record) => record.retained).reduce((sum, record) => sum + record.size, 0),
      };
      expect(await a.blobs.totals()).toEqual(expected);
      expect(await b.blobs.totals()).toEqual(expected);
      const evictable = records.filter((record) => !record.retained).map((record) => record.digest).sort();
      expect((await b.blobs.leastRecentlyUsed(100)).map((record) => record.digest).sort()).toEqual(evictable);
    });

    it('ping resolves while the backend is up; close is idempotent', async () => {
      const other = await context.openAnother();
      await expect(other.ping()).resolves.toBeUndefined();
      await other.close();
      await expect(other.close()).resolves.toBeUndefined();
    });
  });
}
