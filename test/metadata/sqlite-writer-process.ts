/**
 * A separate process writing to one metadata.db (sqlite-processes.test.ts starts several):
 * usage increments, tag batches and blob records, as serve, warm and import do side by side.
 * Usage: node --import tsx sqlite-writer-process.ts <file> <id> <rounds> <start at, ms since the epoch>
 * Every process starts writing at the same moment, so their transactions really interleave.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SqliteMetadataStore } from '../../src/metadata/sqlite/sqlite-metadata-store.js';

const [filename, id, rounds, startAt] = [process.argv[2]!, process.argv[3]!, Number(process.argv[4]), Number(process.argv[5])];
const store = new SqliteMetadataStore({ filename, busyTimeoutMs: 30_000 });
await sleep(Math.max(0, startAt - Date.now()));
for (let round = 0; round < rounds; round += 1) {
  await store.usage.add(new Map([['shared/repo', { pulls: 1, hits: 2, misses: 3 }], [`own/${id}`, { pulls: 1, hits: 0, misses: 0 }]]));
  await store.tags.setMany(Array.from({ length: 20 }, (_, i) => ({
    repository: `proc/${id}`, tag: `r${round}-t${i}`, record: { digest: `sha256:${id}`, mediaType: 'm', size: i, checkedAt: round },
  })));
  await store.tags.set('shared/repo', 'latest', { digest: `sha256:${id}-${round}`, mediaType: 'm', size: 1, checkedAt: round });
  await store.blobs.put(`sha256:${id}-${round}`, 10, { retained: round % 2 === 0 });
}
await store.close();
process.stdout.write('done\n');
