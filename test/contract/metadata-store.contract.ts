/**
 * The MetadataStore contract (src/metadata/metadata-store.ts), run against every implementation:
 * test/metadata/{memory,sqlite,redis}-metadata-store.test.ts each call
 * `describeMetadataStoreContract` with a backend. Every behaviour the interface comments
 * promise has a test here; this file covers tags, the catalog, links and manifest records,
 * metadata-records.contract.ts the blob index, uploads, verdicts and usage.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ManifestRecord, MetadataStore } from '../../src/metadata/metadata-store.js';
import { describeRecordsContract } from './metadata-records.contract.js';
import { collect, digestOf, manifestRecord, tagRecord, type ContractContext } from './metadata-fixtures.js';

export interface MetadataBackend {
  /** A store on this backend; every store opened from one backend sees the same data. */
  open(): Promise<MetadataStore>;
  /** Removes what the backend holds (files, keys); stores are closed before. */
  destroy(): Promise<void>;
}

export function describeMetadataStoreContract(name: string, createBackend: () => Promise<MetadataBackend>): void {
  describe(`MetadataStore contract: ${name}`, () => {
    const context = {} as ContractContext;
    let backend: MetadataBackend;
    let opened: MetadataStore[] = [];
    beforeEach(async () => {
      backend = await createBackend();
      opened = [];
      context.openAnother = async () => {
        const store = await backend.open();
        opened.push(store);
        return store;
      };
      context.store = await context.openAnother();
    });
    afterEach(async () => {
      for (const store of opened) await store.close();
      await backend.destroy();
    });

    describeTagsContract(context);
    describeCatalogContract(context);
    describeLinksContract(context);
    describeManifestsContract(context);
    describeRecordsContract(context);
  });
}

function describeTagsContract(context: ContractContext): void {
  describe('tags', () => {
    it('get answers undefined for an unknown tag and the record as set for a known one', async () => {
      const { tags } = context.store;
      expect(await tags.get('docker.io/library/alpine', 'latest')).toBeUndefined();
      await tags.set('docker.io/library/alpine', 'latest', tagRecord(1));
      expect(await tags.get('docker.io/library/alpine', 'latest')).toStrictEqual(tagRecord(1));
      expect(await tags.get('docker.io/library/alpine', 'other')).toBeUndefined();
      expect(await tags.get('docker.io/library/alpinex', 'latest')).toBeUndefined();
    });

    it('set re-points a tag (upsert) and records are copies, not shared objects', async () => {
      const { tags } = context.store;
      const first = tagRecord(1);
      await tags.set('team/app', 'v1', first);
      first.digest = digestOf(99);
      expect((await tags.get('team/app', 'v1'))!.digest).toBe(digestOf(1));
      await tags.set('team/app', 'v1', tagRecord(2, 5));
      const read = await tags.get('team/app', 'v1');
      expect(read).toStrictEqual(tagRecord(2, 5));
      read!.size = 0;
      expect((await tags.get('team/app', 'v1'))!.size).toBe(502);
      expect(await tags.count()).toEqual({ tags: 1, repositories: 1 });
    });

    it('set and setMany add the repository to the catalog', async () => {
      await context.store.tags.set('b/one', 'v1', tagRecord(1));
      await context.store.tags.setMany([{ repository: 'a/two', tag: 'v1', record: tagRecord(2) }]);
      expect(await context.store.catalog.list()).toEqual(['a/two', 'b/one']);
    });

    it('setMany stores every entry; a later entry for the same tag wins; an empty batch is a no-op', async () => {
      const { tags } = context.store;
      await tags.setMany([]);
      const entries = Array.from({ length: 250 }, (_, i) => ({ repository: `repo/${i % 7}`, tag: `t${i}`, record: tagRecord(i) }));
      entries.push({ repository: 'repo/0', tag: 't0', record: tagRecord(1000) });
      await tags.setMany(entries);
      expect(await tags.get('repo/0', 't0')).toStrictEqual(tagRecord(1000));
      expect(await tags.get('repo/3', 't3')).toStrictEqual(tagRecord(3));
      expect(await tags.count()).toEqual({ tags: 250, repositories: 7 });
    });

    it('delete says whether the tag existed and removes it from get, list and count', async () => {
      const { tags } = context.store;
      await tags.set('r', 'a', tagRecord(1));
      await tags.set('r', 'b', tagRecord(2));
      expect(await tags.delete('r', 'a')).toBe(true);
      expect(await tags.delete('r', 'a')).toBe(false);
      expect(await tags.delete('unknown', 'a')).toBe(false);
      expect(await tags.get('r', 'a')).toBeUndefined();
      expect(await tags.list('r')).toEqual(['b']);
      expect(await tags.count()).toEqual({ tags: 1, repositories: 1 });
      await tags.delete('r', 'b');
      expect(await tags.count()).toEqual({ tags: 0, repositories: 0 });
      await tags.set('r', 'b', tagRecord(2));
      expect(await tags.count()).toEqual({ tags: 1, repositories: 1 });
    });

    it('list is in code point order (upper case before lower, "1.10" before "1.9") and per repository', async () => {
      const { tags } = context.store;
      const names = ['latest', 'Latest', '1.9', '1.10', '_x', 'a-b', 'a.b', 'a_b', 'v2', 'V2', '0'];
      for (const [i, tag] of names.entries()) await tags.set('org/app', tag, tagRecord(i));
      // Repositories sharing a prefix must not leak into each other's lists.
      await tags.set('org/ap', 'zz', tagRecord(50));
      await tags.set('org/app/sub', 'zz', tagRecord(51));
      await tags.set('org/appx', 'zz', tagRecord(52));
      expect(await tags.list('org/app')).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
      expect(await tags.list('org/app')).toEqual(['0', '1.10', '1.9', 'Latest', 'V2', '_x', 'a-b', 'a.b', 'a_b', 'latest', 'v2']);
      expect(await tags.list('org/none')).toEqual([]);
    });

    it('list pages by n and last: after last (present or not), at most n, nothing past the end', async () => {
      const { tags } = context.store;
      for (const tag of ['a', 'b', 'c', 'd', 'e']) await tags.set('r', tag, tagRecord(tag.charCodeAt(0)));
      expect(await tags.list('r', { n: 2 })).toEqual(['a', 'b']);
      expect(await tags.list('r', { n: 2, last: 'b' })).toEqual(['c', 'd']);
      expect(await tags.list('r', { n: 2, last: 'd' })).toEqual(['e']);
      expect(await tags.list('r', { n: 2, last: 'e' })).toEqual([]);
      expect(await tags.list('r', { last: 'bb' })).toEqual(['c', 'd', 'e']);
      expect(await tags.list('r', { last: 'A' })).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(await tags.list('r', { n: 100 })).toEqual(['a', 'b', 'c', 'd', 'e']);
      expect(await tags.list('r', { n: 0 })).toEqual([]);
      expect(await tags.list('r', {})).toEqual(['a', 'b', 'c', 'd', 'e']);
    });

    it('following last page by page visits every tag exactly once', async () => {
      const { tags } = context.store;
      const all = Array.from({ length: 103 }, (_, i) => `tag-${String(i).padStart(3, '0')}`);
      await tags.setMany(all.map((tag, i) => ({ repository: 'big/repo', tag, record: tagRecord(i) })));
      const seen: string[] = [];
      let last: string | undefined;
      for (;;) {
        const page = await tags.list('big/repo', { n: 10, last });
        seen.push(...page);
        if (page.length < 10) break;
        last = page[page.length - 1];
      }
      expect(seen).toEqual(all);
    });

    it('entries yields every tag of every repository exactly once', async () => {
      const { tags } = context.store;
      const expected = Array.from({ length: 1_234 }, (_, i) => ({ repository: `r/${i % 13}`, tag: `t${i}`, record: tagRecord(i) }));
      await tags.setMany(expected);
      const key = (entry: { repository: string; tag: string }) => `${entry.repository}:${entry.tag}`;
      const seen = await collect(tags.entries());
      expect(seen.map(key).sort()).toEqual(expected.map(key).sort());
      expect(seen.find((entry) => entry.tag === 't77')).toStrictEqual(expected[77]);
    });

    it('entries and count do not depend on the catalog: a repository removed from it keeps its tags', async () => {
      const { tags, catalog } = context.store;
      await tags.set('gone/from-catalog', 'v1', tagRecord(1));
      await catalog.remove('gone/from-catalog');
      expect(await collect(tags.entries())).toStrictEqual([{ repository: 'gone/from-catalog', tag: 'v1', record: tagRecord(1) }]);
      expect(await tags.count()).toEqual({ tags: 1, repositories: 1 });
      expect(await tags.list('gone/from-catalog')).toEqual(['v1']);
    });

    it('count is zero for an empty store and follows sets, re-points and deletes', async () => {
      const { tags } = context.store;
      expect(await tags.count()).toEqual({ tags: 0, repositories: 0 });
      await tags.set('a', '1', tagRecord(1));
      await tags.set('a', '2', tagRecord(2));
      await tags.set('a', '2', tagRecord(3));
      await tags.set('b', '1', tagRecord(4));
      expect(await tags.count()).toEqual({ tags: 3, repositories: 2 });
    });
  });
}

function describeCatalogContract(context: ContractContext): void {
  describe('catalog', () => {
    it('add is idempotent; list is lexical and pages by n and last; remove forgets (unknown: no-op)', async () => {
      const { catalog } = context.store;
      for (const name of ['docker.io/library/b', 'docker.io/library/a', 'ghcr.io/x/y', 'team/app', 'docker.io/library/a']) await catalog.add(name);
      expect(await catalog.list()).toEqual(['docker.io/library/a', 'docker.io/library/b', 'ghcr.io/x/y', 'team/app']);
      expect(await catalog.list({ n: 2 })).toEqual(['docker.io/library/a', 'docker.io/library/b']);
      expect(await catalog.list({ n: 2, last: 'docker.io/library/b' })).toEqual(['ghcr.io/x/y', 'team/app']);
      expect(await catalog.list({ last: 'e' })).toEqual(['ghcr.io/x/y', 'team/app']);
      expect(await catalog.list({ last: 'team/app' })).toEqual([]);
      expect(await catalog.list({ n: 0 })).toEqual([]);
      await catalog.remove('ghcr.io/x/y');
      await catalog.remove('never/added');
      expect(await catalog.list()).toEqual(['docker.io/library/a', 'docker.io/library/b', 'team/app']);
    });

    it('an empty catalog lists nothing', async () => {
      expect(await context.store.catalog.list()).toEqual([]);
      expect(await context.store.catalog.list({ n: 5, last: 'x' })).toEqual([]);
    });
  });
}

function describeLinksContract(context: ContractContext): void {
  describe('links', () => {
    it('add is idempotent, has answers both ways, and add puts the repository in the catalog', async () => {
      const { links, catalog } = context.store;
      await links.add('team/app', digestOf(1));
      await links.add('team/app', digestOf(1));
      expect(await links.has('team/app', digestOf(1))).toBe(true);
      expect(await links.has('team/app', digestOf(2))).toBe(false);
      expect(await links.has('team/other', digestOf(1))).toBe(false);
      expect(await collect(links.digests('team/app'))).toEqual([digestOf(1)]);
      expect(await links.repositories(digestOf(1), 10)).toEqual(['team/app']);
      expect(await catalog.list()).toEqual(['team/app']);
    });

    it('repositories(digest, limit) lists linked repositories, at most limit', async () => {
      const { links } = context.store;
      const names = ['a/1', 'b/2', 'c/3', 'd/4', 'e/5'];
      for (const name of names) await links.add(name, digestOf(7));
      await links.add('z/unrelated', digestOf(8));
      expect((await links.repositories(digestOf(7), 10)).sort()).toEqual(names);
      const limited = await links.repositories(digestOf(7), 3);
      expect(limited).toHaveLength(3);
      expect(names).toEqual(expect.arrayContaining(limited));
      expect(new Set(limited).size).toBe(3);
      expect(await links.repositories(digestOf(9), 10)).toEqual([]);
    });

    it('digests(repository) yields every linked digest once, and nothing for an unknown repository', async () => {
      const { links } = context.store;
      const digests = Array.from({ length: 1_500 }, (_, i) => digestOf(i));
      for (const digest of digests) await links.add('big/repo', digest);
      await links.add('big/repo2', digestOf(99_999));
      expect((await collect(links.digests('big/repo'))).sort()).toEqual(digests);
      expect(await collect(links.digests('nobody/here'))).toEqual([]);
    });

    it('remove drops one link in both directions; removeDigest drops every link to a digest', async () => {
      const { links } = context.store;
      await links.add('a', digestOf(1));
      await links.add('b', digestOf(1));
      await links.add('a', digestOf(2));
      await links.remove('a', digestOf(1));
      await links.remove('a', digestOf(404));
      expect(await links.has('a', digestOf(1))).toBe(false);
      expect(await links.repositories(digestOf(1), 10)).toEqual(['b']);
      await links.add('a', digestOf(1));
      await links.removeDigest(digestOf(1));
      expect(await links.has('a', digestOf(1))).toBe(false);
      expect(await links.has('b', digestOf(1))).toBe(false);
      expect(await links.repositories(digestOf(1), 10)).toEqual([]);
      expect(await collect(links.digests('a'))).toEqual([digestOf(2)]);
      expect(await collect(links.digests('b'))).toEqual([]);
    });
  });
}

function describeManifestsContract(context: ContractContext): void {
  describe('manifests', () => {
    it('put then get returns the record as put: optional fields absent stay absent, present ones round-trip', async () => {
      const { manifests } = context.store;
      expect(await manifests.get(digestOf(1))).toBeUndefined();
      const plain = manifestRecord(1);
      const full = manifestRecord(2, {
        subject: digestOf(1), artifactType: 'application/vnd.example.sbom', annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z', empty: '' },
      });
      const noReferences = manifestRecord(3, { references: [] });
      for (const record of [plain, full, noReferences]) await manifests.put(record);
      expect(await manifests.get(plain.digest)).toStrictEqual(plain);
      expect(await manifests.get(full.digest)).toStrictEqual(full);
      expect(await manifests.get(noReferences.digest)).toStrictEqual(noReferences);
    });

    it('put replaces a record, and delete forgets it (unknown: no-op)', async () => {
      const { manifests } = context.store;
      await manifests.put(manifestRecord(1, { annotations: { a: '1' } }));
      await manifests.put(manifestRecord(1, { size: 7 }));
      expect(await manifests.get(digestOf(1))).toStrictEqual(manifestRecord(1, { size: 7 }));
      await manifests.delete(digestOf(1));
      await manifests.delete(digestOf(404));
      expect(await manifests.get(digestOf(1))).toBeUndefined();
    });

    it('referrers lists manifests with that subject linked to that repository, whichever came first', async () => {
      const { manifests, links } = context.store;
      const subject = digestOf(1);
      const signature = manifestRecord(2, { subject, artifactType: 'application/vnd.dev.cosign' });
      const sbom = manifestRecord(3, { subject, artifactType: 'application/spdx+json', annotations: { k: 'v' } });
      const elsewhere = manifestRecord(4, { subject });
      const otherSubject = manifestRecord(5, { subject: digestOf(100) });
      const noSubject = manifestRecord(6);
      await links.add('team/app', signature.digest);
      for (const record of [signature, sbom, elsewhere, otherSubject, noSubject]) await manifests.put(record);
      await links.add('team/app', sbom.digest);
      await links.add('team/app', otherSubject.digest);
      await links.add('team/app', noSubject.digest);
      await links.add('team/other', elsewhere.digest);
      const byDigest = (a: ManifestRecord, b: ManifestRecord) => (a.digest < b.digest ? -1 : 1);
      expect((await manifests.referrers('team/app', subject)).sort(byDigest)).toStrictEqual([signature, sbom]);
      expect(await manifests.referrers('team/other', subject)).toStrictEqual([elsewhere]);
      expect(await manifests.referrers('team/none', subject)).toEqual([]);
      await links.remove('team/app', signature.digest);
      await manifests.delete(sbom.digest);
      expect(await manifests.referrers('team/app', subject)).toEqual([]);
    });

    it('entries yields every record once', async () => {
      const { manifests } = context.store;
      const records = Array.from({ length: 1_100 }, (_, i) => manifestRecord(i, i % 3 === 0 ? { subject: digestOf(5) } : {}));
      for (const record of records) await manifests.put(record);
      const seen = await collect(manifests.entries());
      expect(seen.map((record) => record.digest).sort()).toEqual(records.map((record) => record.digest).sort());
      expect(seen.find((record) => record.digest === digestOf(300))).toStrictEqual(records[300]);
    });
  });
}
