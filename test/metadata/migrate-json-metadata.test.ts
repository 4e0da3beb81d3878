/**
 * A cache written by a release before the SQLite store, migrated into the new store: every tag
 * (with its checkedAt), catalog name, usage count, live verdict and content source arrives;
 * expired, deleted and torn entries do not; the old files are renamed, not deleted; running
 * again after an interruption imports nothing twice.
 */
import { randomUUID } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryMetadataStore } from '../../src/metadata/memory/memory-metadata-store.js';
import type { MetadataStore, TagEntry } from '../../src/metadata/metadata-store.js';
import { migrateJsonMetadata } from '../../src/metadata/migrate-json-metadata.js';
import { RedisMetadataStore } from '../../src/metadata/redis/redis-metadata-store.js';
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js';
import { collect, digestOf } from '../contract/metadata-fixtures.js';
import { redisServerInstalled, startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { writeNamespaceFile, writeSourcesFile, type FixtureEntry } from './legacy-cache-fixture.js';

const NOW = Date.now();
const DAY = 24 * 60 * 60 * 1000;

let cacheDir: string;
beforeEach(async () => {
  cacheDir = await mkdtemp(path.join(tmpdir(), 'legacy-cache-'));
});
afterEach(() => rm(cacheDir, { recursive: true, force: true }));

/** 2,600 tags in 26 repositories, some under an upstream whose name has a port. */
function liveTags(): TagEntry[] {
  return Array.from({ length: 2_600 }, (_, i) => ({
    repository: i % 2 === 0 ? `docker.io/library/repo-${i % 26}` : `localhost:5000/team/repo-${i % 26}`,
    tag: i % 13 === 0 ? `v1.${i}-alpine_3.19` : `t${i}`,
    record: { digest: digestOf(i), mediaType: 'application/vnd.oci.image.index.v1+json', size: 300 + i, checkedAt: NOW - i * 1_000 },
  }));
}

const VERDICTS = [
  { key: 'docker.io/acme/private', value: { readable: false, checkedAt: NOW - 5_000 } },
  { key: 'docker.io/library/repo-0', value: { readable: true, checkedAt: NOW - 6_000 } },
  { key: 'localhost:5000/team/repo-1', value: { readable: true, checkedAt: NOW - 7_000 }, expires: NOW + DAY },
];
const USAGE = {
  since: NOW - 30 * DAY,
  updatedAt: NOW - 1_000,
  totals: { pulls: 12, hits: 40, misses: 9 },
  repositories: {
    'docker.io/library/repo-0': { pulls: 10, hits: 30, misses: 5 },
    'localhost:5000/team/repo-1': { pulls: 2, hits: 10, misses: 3 },
    'docker.io/library/repo-2': { pulls: 0, hits: 0, misses: 1 },
  },
};
const SOURCES = Array.from({ length: 40 }, (_, i) => ({
  digest: digestOf(100_000 + i),
  repositories: Array.from({ length: 1 + (i % 3) }, (_, j) => `docker.io/library/repo-${(i + j) % 26}`),
}));

async function writeLegacyCache(): Promise<TagEntry[]> {
  const tags = liveTags();
  const tagEntries: FixtureEntry[] = tags.map((entry) => ({ key: `${entry.repository}:${entry.tag}`, value: entry.record, expires: NOW + 100 * DAY, expire: NOW + 100 * DAY }));
  tagEntries.push({ key: 'docker.io/library/old:gone', value: { ...tags[0]!.record }, expires: NOW - 1 });
  tagEntries.push({ key: 'docker.io/library/old:gone-too', value: { ...tags[0]!.record }, expire: NOW - 1 });
  tagEntries.push({ key: 'docker.io/library/old:torn', value: null });
  await writeNamespaceFile(cacheDir, 'tags', tagEntries, { deleted: ['docker.io/library/old:deleted'], rawValues: new Map([['docker.io/library/old:torn', '{"value":{"dig']]) });

  const byRepository = new Map<string, string[]>();
  for (const entry of tags) byRepository.set(entry.repository, [...(byRepository.get(entry.repository) ?? []), entry.tag].sort());
  const lists: FixtureEntry[] = [...byRepository].map(([key, value]) => ({ key, value, expires: NOW + 100 * DAY }));
  // Recorded before the catalog existed: only its tag list names it.
  lists.push({ key: 'ghcr.io/early/list', value: ['x'] });
  lists.push({ key: '*catalog', value: [...byRepository.keys(), 'docker.io/library/no-tags-left'].sort() });
  await writeNamespaceFile(cacheDir, 'repositories', lists);

  await writeNamespaceFile(cacheDir, 'usage', [{ key: 'usage', value: USAGE }]);
  // access.json as keyv-file itself wrote it (no updatedAt, lastExpire).
  await writeNamespaceFile(cacheDir, 'access', [...VERDICTS, { key: 'docker.io/expired/verdict', value: { readable: true, checkedAt: 1 }, expires: NOW - 10 }], { keyvFileFormat: true });

  for (const source of SOURCES) await writeSourcesFile(cacheDir, source.digest, JSON.stringify(source.repositories));
  await writeSourcesFile(cacheDir, digestOf(200_000), '["docker.io/library/tor');
  await writeSourcesFile(cacheDir, `${digestOf(200_001)}.3f0c.tmp`, '["docker.io/library/tmp"]');
  return tags;
}

async function assertEverythingArrived(store: MetadataStore, tags: TagEntry[]): Promise<void> {
  for (const entry of tags) expect(await store.tags.get(entry.repository, entry.tag)).toStrictEqual(entry.record);
  expect(await store.tags.count()).toEqual({ tags: 2_600, repositories: 26 });
  expect(await store.tags.get('docker.io/library/old', 'gone')).toBeUndefined();
  expect(await store.tags.get('docker.io/library/old', 'deleted')).toBeUndefined();
  expect(await store.tags.list('docker.io/library/repo-0', { n: 3 })).toEqual([...tags.filter((entry) => entry.repository === 'docker.io/library/repo-0').map((entry) => entry.tag)].sort().slice(0, 3));
  // The old catalog, plus the repositories content sources name (a link puts its repository in the catalog).
  const names = new Set([...tags.map((entry) => entry.repository), 'docker.io/library/no-tags-left', 'ghcr.io/early/list', ...SOURCES.flatMap((source) => source.repositories)]);
  expect(await store.catalog.list()).toEqual([...names].sort());
  const usage = await store.usage.report(10);
  expect(usage.totals).toEqual({ pulls: 12, hits: 40, misses: 9 });
  expect(usage.repositories).toEqual([
    { repository: 'docker.io/library/repo-0', pulls: 10, hits: 30, misses: 5 },
    { repository: 'localhost:5000/team/repo-1', pulls: 2, hits: 10, misses: 3 },
    { repository: 'docker.io/library/repo-2', pulls: 0, hits: 0, misses: 1 },
  ]);
  for (const { key, value } of VERDICTS) expect(await store.verdicts.get(key)).toStrictEqual(value);
  expect(await store.verdicts.get('docker.io/expired/verdict')).toBeUndefined();
  for (const source of SOURCES) {
    expect((await store.links.repositories(source.digest, 10)).sort()).toEqual([...source.repositories].sort());
  }
  expect(await store.links.repositories(digestOf(200_000), 10)).toEqual([]);
  expect(await store.links.repositories(digestOf(200_001), 10)).toEqual([]);
}

let redis: RedisServer | undefined;
beforeAll(async () => {
  if (redisServerInstalled()) redis = await startRedisServer();
});
afterAll(() => redis?.stop());

const backends: Array<[string, (dir: string) => Promise<MetadataStore>]> = [
  ['sqlite', async (dir) => new SqliteMetadataStore({ filename: path.join(dir, 'metadata.db') })],
  ['memory', async () => new MemoryMetadataStore()],
];
if (redisServerInstalled()) backends.push(['redis', () => RedisMetadataStore.open({ url: redis!.url, keyPrefix: `migrate-${randomUUID()}:` })]);

describe.each(backends)('migrateJsonMetadata into %s', (_name, openStore) => {
  it('imports every live record and renames (never deletes) the old files', async () => {
    const tags = await writeLegacyCache();
    const before = await readFile(path.join(cacheDir, 'metadata', 'tags.json'), 'utf8');
    const store = await openStore(cacheDir);
    const report = await migrateJsonMetadata(cacheDir, store, { batchSize: 500, now: NOW });
    await assertEverythingArrived(store, tags);
    expect(report).toMatchObject({ tags: 2_600, repositories: 28, usageRepositories: 3, usageSkipped: false, verdicts: 3, unreadable: [] });
    expect(report.links).toBe(SOURCES.reduce((sum, source) => sum + source.repositories.length, 0));
    // Expired (2), torn (1) and expired verdict (1) entries, and the torn sources file.
    expect(report.skipped).toBe(5);
    const stamp = new Date(NOW).toISOString().replace(/[:.]/g, '-');
    expect(report.migrated).toEqual(['tags', 'repositories', 'usage', 'access'].map((name) => `metadata/${name}.json -> metadata/${name}.json.migrated-${stamp}`)
      .concat(`sources -> sources.migrated-${stamp}`));
    expect((await readdir(path.join(cacheDir, 'metadata'))).sort()).toEqual(['access', 'repositories', 'tags', 'usage'].map((name) => `${name}.json.migrated-${stamp}`));
    expect(await readFile(path.join(cacheDir, 'metadata', `tags.json.migrated-${stamp}`), 'utf8')).toBe(before);
    expect((await readdir(cacheDir)).filter((name) => name.startsWith('sources'))).toEqual([`sources.migrated-${stamp}`]);
    await store.close();
  });

  it('a second run finds nothing to do', async () => {
    await writeLegacyCache();
    const store = await openStore(cacheDir);
    await migrateJsonMetadata(cacheDir, store, { now: NOW });
    const again = await migrateJsonMetadata(cacheDir, store, { now: NOW + 1 });
    expect(again).toMatchObject({ migrated: [], tags: 0, repositories: 0, usageRepositories: 0, verdicts: 0, links: 0 });
    await store.close();
  });

  it('stopped before the renames (a crash), the next run imports again without counting anything twice', async () => {
    const tags = await writeLegacyCache();
    const store = await openStore(cacheDir);
    const first = await migrateJsonMetadata(cacheDir, store, { now: NOW });
    // Put every old file back under its old name, as if the process died after importing.
    for (const line of first.migrated) {
      const [from, to] = line.split(' -> ') as [string, string];
      if (from === 'sources') await rename(path.join(cacheDir, to), path.join(cacheDir, from));
      else await copyFile(path.join(cacheDir, to), path.join(cacheDir, from));
    }
    const second = await migrateJsonMetadata(cacheDir, store, { now: NOW + 1_000 });
    expect(second.usageSkipped).toBe(true);
    expect(second.tags).toBe(2_600);
    await assertEverythingArrived(store, tags);
    expect(await collect(store.links.digests('docker.io/library/repo-1'))).toHaveLength(new Set(SOURCES.filter((s) => s.repositories.includes('docker.io/library/repo-1')).map((s) => s.digest)).size);
    await store.close();
  });

  it('a failure part-way leaves the file in place; the next run completes the import', async () => {
    const tags = await writeLegacyCache();
    const store = await openStore(cacheDir);
    const setMany = store.tags.setMany.bind(store.tags);
    let calls = 0;
    store.tags.setMany = async (entries) => {
      calls += 1;
      if (calls === 3) throw new Error('disk full');
      return setMany(entries);
    };
    await expect(migrateJsonMetadata(cacheDir, store, { batchSize: 500, now: NOW })).rejects.toThrow('disk full');
    expect(await readdir(path.join(cacheDir, 'metadata'))).toContain('tags.json');
    expect((await store.tags.count()).tags).toBe(1_000);
    store.tags.setMany = setMany;
    await migrateJsonMetadata(cacheDir, store, { batchSize: 500, now: NOW });
    await assertEverythingArrived(store, tags);
    await store.close();
  });

  it('a file that does not parse is moved aside as unreadable and the rest still arrives', async () => {
    await writeLegacyCache();
    await writeFile(path.join(cacheDir, 'metadata', 'usage.json'), '{"cache":[["usage:usage",');
    const store = await openStore(cacheDir);
    const report = await migrateJsonMetadata(cacheDir, store, { now: NOW });
    const stamp = new Date(NOW).toISOString().replace(/[:.]/g, '-');
    expect(report.unreadable).toEqual([`metadata/usage.json -> metadata/usage.json.unreadable-${stamp}`]);
    expect(report.tags).toBe(2_600);
    expect((await store.usage.report(1)).totals).toEqual({ pulls: 0, hits: 0, misses: 0 });
    await store.close();
  });

  it('a cache without old metadata is left as it is', async () => {
    const store = await openStore(cacheDir);
    expect(await migrateJsonMetadata(cacheDir, store)).toMatchObject({ migrated: [], unreadable: [], tags: 0, links: 0, skipped: 0 });
    expect((await readdir(cacheDir)).filter((name) => !name.startsWith('metadata.db'))).toEqual([]);
    await store.close();
  });
});
