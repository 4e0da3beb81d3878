/**
 * The metadata store at scale, without the rest of the mirror: 200,000 tags in 2,000
 * repositories loaded through `tags.setMany` in batches, then random `tags.get`, a page of
 * `tags.list(repo, { n: 50 })`, and 1,000 re-points while readers keep reading (issue 13's
 * sizes; the product numbers through `registry-mirror import` come with the rewiring).
 *
 *   node --import tsx test/bench/metadata-scale.ts [--store sqlite|redis|all] [--tags 200000] [--repositories 2000]
 *     [--batch 1000] [--order interleaved|grouped]
 *
 * Redis runs against a redis-server this script starts on a free loopback port
 * (test/helpers/redis-server.ts); it is skipped when redis-server is not installed.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import type { MetadataStore, TagEntry } from '../../src/metadata/metadata-store.js';
import { RedisMetadataStore } from '../../src/metadata/redis/redis-metadata-store.js';
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js';
import { redisServerInstalled, startRedisServer } from '../helpers/redis-server.js';
import { describeMachine } from './machine.js';
import { MiB, percentile, round } from './stats.js';

const { values: args } = parseArgs({
  options: {
    store: { type: 'string', default: 'all' },
    tags: { type: 'string', default: '200000' },
    repositories: { type: 'string', default: '2000' },
    batch: { type: 'string', default: '1000' },
    // interleaved: consecutive tags in different repositories (the worst case for the index);
    // grouped: a repository's tags together, as an archive lists them.
    order: { type: 'string', default: 'interleaved' },
  },
});
const TAGS = Number(args.tags);
const REPOSITORIES = Number(args.repositories);
const BATCH = Number(args.batch);
const READERS = 16;
const REPOINTS = 1_000;

interface Backend {
  name: string;
  store: MetadataStore;
  /** Where the data lives, in MiB: the SQLite file and its WAL, or Redis's used memory. */
  size(): Promise<Record<string, number | null>>;
  dispose(): Promise<void>;
}

const repositoryName = (r: number) => `docker.io/bench/repo-${String(r).padStart(5, '0')}`;
const tagName = (t: number) => `v${t}.${t % 7}-${t % 3 === 0 ? 'alpine' : 'slim'}`;
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const random = (n: number) => Math.floor(Math.random() * n);

function* generateTags(): Iterable<TagEntry> {
  const perRepository = Math.ceil(TAGS / REPOSITORIES);
  const grouped = args.order === 'grouped';
  for (let i = 0; i < TAGS; i += 1) {
    const r = grouped ? Math.floor(i / perRepository) : i % REPOSITORIES;
    const t = grouped ? i % perRepository : Math.floor(i / REPOSITORIES) % perRepository;
    yield { repository: repositoryName(r), tag: tagName(t), record: { digest: digest(i), mediaType: 'application/vnd.oci.image.index.v1+json', size: 1_000 + (i % 5_000), checkedAt: Date.now() } };
  }
}

function randomKey(): { repository: string; tag: string } {
  return { repository: repositoryName(random(REPOSITORIES)), tag: tagName(random(Math.ceil(TAGS / REPOSITORIES))) };
}

const ms = (start: number) => performance.now() - start;
const stats = (values: number[]) => ({ p50: round(percentile(values, 50), 2), p99: round(percentile(values, 99), 2), max: round(percentile(values, 100), 2) });

async function load(store: MetadataStore) {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const batches: number[] = [];
  const started = performance.now();
  let batch: TagEntry[] = [];
  for (const entry of generateTags()) {
    batch.push(entry);
    if (batch.length < BATCH) continue;
    const t = performance.now();
    await store.tags.setMany(batch);
    batches.push(ms(t));
    batch = [];
  }
  if (batch.length > 0) await store.tags.setMany(batch);
  const seconds = ms(started) / 1000;
  loop.disable();
  return { seconds: round(seconds, 2), tags_per_s: Math.round(TAGS / seconds), batch_ms: stats(batches), event_loop_max_ms: round(loop.max / 1e6, 1) };
}

async function randomGets(store: MetadataStore, concurrency: number, seconds: number) {
  let count = 0;
  let misses = 0;
  const until = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      const { repository, tag } = randomKey();
      if (!(await store.tags.get(repository, tag))) misses += 1;
      count += 1;
    }
  }));
  return { concurrency, per_s: Math.round(count / seconds), misses };
}

async function listPages(store: MetadataStore) {
  const latencies: number[] = [];
  for (let i = 0; i < 2_000; i += 1) {
    const repository = repositoryName(random(REPOSITORIES));
    const t = performance.now();
    const page = await store.tags.list(repository, { n: 50, last: i % 2 === 0 ? undefined : tagName(random(20)) });
    latencies.push(ms(t));
    if (page.length === 0) throw new Error(`empty page for ${repository}`);
  }
  return stats(latencies);
}

/** 1,000 re-points, one after another, while READERS loops keep reading random tags. */
async function repointUnderReads(store: MetadataStore) {
  const reads: number[] = [];
  const writes: number[] = [];
  let writing = true;
  const readers = Array.from({ length: READERS }, async () => {
    while (writing) {
      const { repository, tag } = randomKey();
      const t = performance.now();
      await store.tags.get(repository, tag);
      reads.push(ms(t));
    }
  });
  const started = performance.now();
  for (let i = 0; i < REPOINTS; i += 1) {
    const { repository, tag } = randomKey();
    const t = performance.now();
    await store.tags.set(repository, tag, { digest: digest(TAGS + i), mediaType: 'application/vnd.oci.image.index.v1+json', size: 1, checkedAt: Date.now() });
    writes.push(ms(t));
  }
  const seconds = ms(started) / 1000;
  writing = false;
  await Promise.all(readers);
  return { seconds: round(seconds, 2), write_ms: stats(writes), reads: reads.length, read_ms: stats(reads) };
}

async function sqliteBackend(): Promise<Backend> {
  const dir = await mkdtemp(path.join(tmpdir(), 'metadata-scale-'));
  const filename = path.join(dir, 'metadata.db');
  const store = new SqliteMetadataStore({ filename });
  const mib = (file: string) => stat(file).then((s) => round(s.size / MiB, 1), () => 0);
  const size = async () => ({ file: await mib(filename), wal: await mib(`${filename}-wal`) });
  return { name: 'sqlite', store, size, dispose: async () => { await store.close(); await rm(dir, { recursive: true, force: true }); } };
}

async function redisBackend(): Promise<Backend> {
  const server = await startRedisServer();
  const store = await RedisMetadataStore.open({ url: server.url, keyPrefix: `bench-${randomUUID()}:` });
  const admin = new Redis(server.url);
  const size = async () => ({ used_memory: round(Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1] ?? 0) / MiB, 1) });
  return { name: 'redis', store, size, dispose: async () => { await store.close(); admin.disconnect(); await server.stop(); } };
}

async function run(backend: Backend) {
  const { store } = backend;
  const rssBefore = process.memoryUsage().rss;
  const loaded = await load(store);
  const counted = await store.tags.count();
  if (counted.tags !== TAGS || counted.repositories !== REPOSITORIES) throw new Error(`loaded ${JSON.stringify(counted)}`);
  const result = {
    store: backend.name,
    load: loaded,
    size_mib: await backend.size(),
    rss_mib: { before: round(rssBefore / MiB, 1), after_load: round(process.memoryUsage().rss / MiB, 1) },
    get: [await randomGets(store, 1, 3), await randomGets(store, READERS, 3)],
    list_n50_ms: await listPages(store),
    repoint_1000_under_reads: await repointUnderReads(store),
    rss_mib_end: round(process.memoryUsage().rss / MiB, 1),
  };
  await backend.dispose();
  return result;
}

const wanted = args.store === 'all' ? ['sqlite', 'redis'] : [args.store];
console.log(JSON.stringify({ machine: describeMachine(), tags: TAGS, repositories: REPOSITORIES, batch: BATCH, order: args.order }));
for (const name of wanted) {
  if (name === 'redis' && !redisServerInstalled()) continue;
  const backend = name === 'redis' ? await redisBackend() : await sqliteBackend();
  console.log(JSON.stringify(await run(backend), null, 2));
}
