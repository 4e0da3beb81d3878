/**
 * Phase 2 of the attack run, on one mirror with upstream credentials and no client auth (the
 * access policy active), the real build beside its own tools on the same cache:
 *   - private content in every order of events: plant-then-warm, warm-then-plant, import,
 *     concurrent fills (`registry-mirror warm`/`import` as processes of their own) — an anonymous
 *     client asking for a private layer or manifest under a public name never gets it;
 *   - crafted archives given to `registry-mirror import`: one line and exit 1 each, the server on;
 *   - 3,000 random-digest and 3,000 random-name anonymous requests: RSS, rows and files before
 *     and after.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import pLimit from 'p-limit';
import { blobsOf, indexJsonOf, writeLayoutArchive } from '../airgap/crafted-archives.js';
import { startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { makeImage, pushImage, type TestImage } from '../helpers/test-images.js';
import { startServer, timedCommand, type ServerProcess } from '../bench/mirror-process.js';
import { ACCEPT, fileCount, MAIN, type Report, rowCounts, rssMb, tryGet, writeConfig } from './attack-support.js';

const PUBLIC = 'library/alpine';
const PRIVATE = 'testuser/private';
const RANDOM_REQUESTS = 3_000;

interface Setup {
  report: Report;
  mirror: ServerProcess;
  upstream: FakeRegistry;
  config: string;
  cacheDir: string;
  dir: string;
}

export async function privateContent(report: Report, dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const upstream = await startFakeRegistry({ auth: 'bearer', users: { alice: 'upstream-pw' }, privatePrefixes: ['testuser/'] });
  pushImage(upstream, PUBLIC, 'latest', makeImage({ layers: [3_000], seed: 'attack-public' }));
  const cacheDir = path.join(dir, 'cache');
  const config = writeConfig(dir, 'private', {
    cache: { dir: cacheDir, maxBytes: 2 ** 30 }, metadata: { store: 'sqlite', maxVerdicts: 1_000 },
    upstreams: { 'docker.io': { url: upstream.url, username: 'alice', password: 'upstream-pw', tokenRealms: [new URL(upstream.tokenUrl).host] } },
  });
  const mirror = await startServer(MAIN, config);
  const setup = { report, mirror, upstream, config, cacheDir, dir };
  try {
    await tryGet(`${mirror.url}/v2/${PUBLIC}/manifests/latest`, { accept: ACCEPT });
    await orders(setup);
    await craftedArchives(setup);
    await randomRequests(setup);
  } finally {
    await mirror.stop();
    await upstream.close();
  }
}

let privateImages = 0;
function privateImage(upstream: FakeRegistry): { image: TestImage; tag: string } {
  privateImages += 1;
  const image = makeImage({ layers: [6_000 + privateImages], seed: `attack-private-${privateImages}` });
  pushImage(upstream, PRIVATE, `v${privateImages}`, image);
  return { image, tag: `v${privateImages}` };
}

/** Anonymous requests for the private image's layer, config and manifest under the public name: true when none got it. */
async function refusedUnderPublicName({ mirror }: Setup, image: TestImage): Promise<{ ok: boolean; detail: string }> {
  const answers = await Promise.all([
    tryGet(`${mirror.url}/v2/${PUBLIC}/blobs/${image.layers[0]!.digest}`),
    tryGet(`${mirror.url}/v2/${PUBLIC}/blobs/${image.config.digest}`),
    tryGet(`${mirror.url}/v2/${PUBLIC}/manifests/${image.manifest.digest}`, { accept: ACCEPT }),
    tryGet(`${mirror.url}/v2/${PRIVATE}/blobs/${image.layers[0]!.digest}`),
  ]);
  const leaked = answers.filter((answer) => answer.status === 200 || answer.body.includes(image.layers[0]!.bytes.subarray(0, 32)));
  return { ok: leaked.length === 0, detail: answers.map((answer) => answer.status).join(',') };
}

async function warm({ config }: Setup, tag: string): Promise<number | null> {
  return (await timedCommand(MAIN, ['warm', '--config', config, `${PRIVATE}:${tag}`], 120)).code;
}

async function orders(setup: Setup): Promise<void> {
  const { report, upstream } = setup;
  const planted = privateImage(upstream);
  const plant = await refusedUnderPublicName(setup, planted.image);
  const warmed = await warm(setup, planted.tag);
  const after = await refusedUnderPublicName(setup, planted.image);
  report.check('plant-then-warm: no anonymous read of private content', plant.ok && after.ok && warmed === 0, `before ${plant.detail}; warm exit ${warmed}; after ${after.detail}`);

  const first = privateImage(upstream);
  const warmedFirst = await warm(setup, first.tag);
  const then = await refusedUnderPublicName(setup, first.image);
  report.check('warm-then-plant: no anonymous read of private content', then.ok && warmedFirst === 0, `warm exit ${warmedFirst}; ${then.detail}`);

  const imported = privateImage(upstream);
  const archive = path.join(setup.dir, 'private.tar');
  await writeLayoutArchive(archive, indexJsonOf([{ image: imported.image, refName: `docker.io/${PRIVATE}:${imported.tag}` }]), blobsOf([imported.image]));
  const importExit = (await timedCommand(MAIN, ['import', '--config', setup.config, archive], 120)).code;
  const afterImport = await refusedUnderPublicName(setup, imported.image);
  report.check('import: no anonymous read of private content', afterImport.ok && importExit === 0, `import exit ${importExit}; ${afterImport.detail}`);

  const racing = privateImage(upstream);
  const warming = warm(setup, racing.tag);
  const raced: Array<{ ok: boolean; detail: string }> = [];
  for (let i = 0; i < 10; i++) raced.push(await refusedUnderPublicName(setup, racing.image));
  const racedExit = await warming;
  raced.push(await refusedUnderPublicName(setup, racing.image));
  report.check('concurrent fills: no anonymous read of private content while warm fills it', raced.every((entry) => entry.ok) && racedExit === 0, `${raced.length} rounds of 4 anonymous requests; warm exit ${racedExit}`);
}

async function craftedArchives(setup: Setup): Promise<void> {
  const { report, dir, config, mirror } = setup;
  const image = makeImage({ layers: [2_000], seed: 'attack-archive' });
  const good = path.join(dir, 'good.tar');
  await writeLayoutArchive(good, indexJsonOf([{ image, refName: 'docker.io/library/archived:1' }]), blobsOf([image]));
  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(good);
  const cases: Record<string, Buffer | string> = {
    'random bytes': randomBytes(4_000),
    'a tar cut short': bytes.subarray(0, 1_300),
    'a gzipped tar': gzipSync(bytes),
    'a directory': dir,
  };
  const files = Object.entries(cases).map(([what, content]) => {
    if (typeof content === 'string') return [what, content] as const;
    const file = path.join(dir, `${what.replace(/\W+/g, '-')}.tar`);
    writeFileSync(file, content);
    return [what, file] as const;
  });
  const notJson = path.join(dir, 'index-not-json.tar');
  await writeLayoutArchive(notJson, Buffer.from('{"manifests":[{"digest":'), blobsOf([image]));
  files.push(['an index.json that is not JSON', notJson]);
  for (const [what, file] of files) {
    const outcome = await timedCommand(MAIN, ['import', '--config', config, file], 60);
    const lines = outcome.output.trim().split('\n');
    report.check(`import of ${what}: one line, exit 1, no stack trace`, outcome.code === 1 && lines.length === 1 && !/\n\s+at /.test(outcome.output), lines[0]?.slice(0, 140) ?? '');
  }
  report.check('the server lives on through the crafted archives', mirror.alive() && (await tryGet(`${mirror.url}/healthz`)).status === 200);
}

/** 3,000 random digests and 3,000 random names, 32 at a time; the statuses they got. */
async function randomRound({ mirror }: Setup): Promise<Record<string, number>> {
  const limit = pLimit(32);
  const statuses: Record<string, number> = {};
  const paths = [
    ...Array.from({ length: RANDOM_REQUESTS }, () => `/v2/${PUBLIC}/blobs/sha256:${randomBytes(32).toString('hex')}`),
    ...Array.from({ length: RANDOM_REQUESTS }, () => `/v2/testuser/r${randomBytes(8).toString('hex')}/manifests/latest`),
  ];
  await Promise.all(paths.map((pathname) => limit(async () => {
    const { status } = await tryGet(`${mirror.url}${pathname}`, { accept: ACCEPT });
    statuses[status] = (statuses[status] ?? 0) + 1;
  })));
  return statuses;
}

/**
 * RSS grows in the first round as the heap, the verdict LRU and the connection pools reach their
 * working size; bounded means a second round of the same adds little. State is counted after both.
 */
async function randomRequests(setup: Setup): Promise<void> {
  const { report, mirror, cacheDir } = setup;
  const before = { rss: rssMb(mirror.pid), rows: rowCounts(cacheDir), files: fileCount(cacheDir) };
  const statuses = await randomRound(setup);
  const firstRss = rssMb(mirror.pid);
  const second = await randomRound(setup);
  const after = { rss: rssMb(mirror.pid), rows: rowCounts(cacheDir), files: fileCount(cacheDir) };
  report.fact('answers to 3,000 random digests and 3,000 random names, twice', [statuses, second]);
  report.fact('RSS MB before / after one round / after two', `${before.rss} / ${firstRss} / ${after.rss}`);
  report.fact('rows before', before.rows);
  report.fact('rows after', after.rows);
  report.fact('files under cache.dir before / after', `${before.files} / ${after.files}`);
  const grown = Object.keys(before.rows).filter((table) => table !== 'verdicts' && after.rows[table] !== before.rows[table]);
  report.check('no record for content that does not exist; no new file', grown.length === 0 && after.files === before.files, grown.join(',') || 'links, blobs, manifests, tags, repositories unchanged');
  report.check('verdicts bounded by metadata.maxVerdicts (1,000 here)', (after.rows.verdicts ?? 0) <= 1_000, `${after.rows.verdicts} rows`);
  report.check('RSS bounded: a second round of 6,000 adds under 16 MB', after.rss - firstRss < 16, `first round +${(firstRss - before.rss).toFixed(1)} MB, second +${(after.rss - firstRss).toFixed(1)} MB`);
}
