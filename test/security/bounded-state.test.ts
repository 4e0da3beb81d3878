/**
 * Issue 12 item 8 (state, not the fill queue): anonymous clients asking for content that does not
 * exist leave bounded state. With upstream credentials and no client auth (the access policy
 * active), 3,000 requests for random digests under a public repository and 3,000 for random
 * private-looking repository names (answered 401 to anonymous probes, as Docker Hub answers for
 * names that do not exist) must create no link, blob, manifest, tag or catalog record and no file
 * under cache.dir, and the access verdicts they leave are capped by `metadata.maxVerdicts`.
 * Rows are counted in the SQLite file itself, files on disk.
 */
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import Database from 'better-sqlite3';
import pLimit from 'p-limit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { get } from '../helpers/http.js';
import { fillsSettled, startMirror, type MirrorUnderTest } from '../helpers/mirror-under-test.js';
import { makeImage, pushImage } from '../helpers/test-images.js';

const REQUESTS = 3_000;
const MAX_VERDICTS = 500;
const TABLES = ['verdicts', 'links', 'blobs', 'manifests', 'tags', 'repositories', 'uploads'] as const;

let upstream: FakeRegistry;
let mirror: MirrorUnderTest;
const image = makeImage({ layers: [4_000], seed: 'bounded-state' });

beforeAll(async () => {
  upstream = await startFakeRegistry({ auth: 'bearer', users: { alice: 'upstream-pw' }, privatePrefixes: ['private/'] });
  pushImage(upstream, 'library/alpine', 'latest', image);
  mirror = await startMirror({
    metadata: { store: 'sqlite', maxVerdicts: MAX_VERDICTS },
    upstreams: { 'docker.io': { url: upstream.url, username: 'alice', password: 'upstream-pw', tokenRealms: [new URL(upstream.tokenUrl).host] } },
  });
});
afterAll(async () => {
  await mirror?.close();
  await upstream?.close();
});

function rows(): Record<string, number> {
  const db = new Database(path.join(mirror.cacheDir, 'metadata.db'), { readonly: true, fileMustExist: true });
  try {
    return Object.fromEntries(TABLES.map((table) => [table, db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number]));
  } finally {
    db.close();
  }
}

/** Files under cache.dir other than the metadata database (whose pages grow and shrink). */
async function files(): Promise<string[]> {
  const entries = await readdir(mirror.cacheDir, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => !entry.isDirectory() && !entry.name.startsWith('metadata.db'))
    .map((entry) => path.relative(mirror.cacheDir, path.join(entry.parentPath, entry.name))).sort();
}

async function requestAll(paths: string[]): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  const limit = pLimit(32);
  await Promise.all(paths.map((pathname) => limit(async () => {
    const { status } = await get(`${mirror.url}${pathname}`, { accept: image.manifest.mediaType });
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  })));
  return statuses;
}

describe('anonymous requests for content that does not exist', () => {
  it('leave no record and no file, and verdicts capped by metadata.maxVerdicts', async () => {
    // The public image, pulled once: its verdict, links and blobs are the state to keep.
    expect((await get(`${mirror.url}/v2/library/alpine/manifests/latest`, { accept: image.manifest.mediaType })).status).toBe(200);
    expect((await get(`${mirror.url}/v2/library/alpine/blobs/${image.layers[0]!.digest}`)).status).toBe(200);
    // The client has the last byte once the digest is checked; the fill links it just after.
    await fillsSettled(mirror);
    const before = { rows: rows(), files: await files() };

    const digests = Array.from({ length: REQUESTS }, () => `/v2/library/alpine/blobs/sha256:${randomBytes(32).toString('hex')}`);
    expect(Object.fromEntries(await requestAll(digests))).toEqual({ 404: REQUESTS });
    const names = Array.from({ length: REQUESTS }, () => `/v2/private/r${randomBytes(8).toString('hex')}/manifests/latest`);
    expect(Object.fromEntries(await requestAll(names))).toEqual({ 404: REQUESTS });
    await mirror.mirror.budget.idle();

    const after = { rows: rows(), files: await files() };
    expect(after.files).toEqual(before.files);
    for (const table of TABLES.filter((name) => name !== 'verdicts')) expect(after.rows[table], table).toBe(before.rows[table]);
    // 3,000 refused names, one verdict each until the cap: the least recently set are forgotten.
    expect(after.rows.verdicts).toBe(MAX_VERDICTS);
  }, 180_000);
});
