/**
 * The mirror at scale (issue 13, done-when): 200,000 tags in 2,000 repositories loaded through
 * `registry-mirror import` of a generated archive (scale-archive.ts), then, with the server
 * started on that cache:
 *   - import time; time from spawning `serve` to the first 200 on /v2/; server RSS;
 *   - warm resolution of random tags (wrk, 16 connections, a Lua script picking a random
 *     repository and tag per request) with its p99, and the upstream requests it caused (the
 *     upstream is a counting sink: every tag is within its TTL, so the answer must be 0);
 *   - a page of tags/list?n=50 (random repositories, with and without `last`), from a second
 *     server on the same cache started `--offline`: online, a proxied tag list is the upstream's
 *     (pull-through/proxy-registry.ts), and the mirror's own list answers only offline (an
 *     air-gapped mirror, what import is for) or when the upstream fails;
 *   - re-pointing 1,000 tags (`import --retag` of a second archive, a separate process writing
 *     the same database) while wrk keeps resolving: the p99 during it.
 * Targets: import < 120 s, /v2/ < 10 s, RSS < 300 MB, >= 5,000 req/s with p99 < 20 ms,
 * tags/list < 50 ms, p99 < 50 ms while re-pointing.
 *
 * `--scale-old-main FILE` measures another build the same way (e.g. release 7997902, built in a
 * temp worktree: its import has no --retag, it re-points silently), with its import cut off at
 * `--scale-import-timeout` seconds.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { startHostile } from '../../helpers/hostile-upstream.js';
import { REPO_ROOT } from '../../interop/support/mirror.js';
import type { BenchContext, BenchResult } from '../context.js';
import { startServer, timedCommand } from '../mirror-process.js';
import { processTree, statusBytes, treeRss } from '../process-tree.js';
import { get, MANIFEST_ACCEPT } from '../registry-client.js';
import { repositoryName, tagName, tagsPerRepository, writeRepointArchive, writeScaleArchive, type ScaleArchive, type ScaleShape } from '../scale-archive.js';
import { percentile, round } from '../stats.js';
import { runWrk, WRK_REPORTER, type WrkResult } from '../wrk.js';

const CONNECTIONS = 16;
const REPOINTS = 1_000;
const LIST_PAGES = 200;
const TTL_S = 30 * 24 * 3600;

export type ScaleContext = Pick<BenchContext, 'options' | 'emit' | 'log'>;

export async function scale(context: ScaleContext): Promise<void> {
  const shape = { tags: context.options.scaleTags, repositories: context.options.scaleRepositories };
  const root = mkdtempSync(join(tmpdir(), 'registry-mirror-bench-scale-'));
  try {
    context.log(`scale: generating ${shape.tags} tags in ${shape.repositories} repositories`);
    const archive = await writeScaleArchive(join(root, 'scale.tar'), shape);
    const repoint = await writeRepointArchive(join(root, 'repoint.tar'), shape, REPOINTS);
    const script = wrkScript(join(root, 'random-tags.lua'), shape);
    const builds: Array<[string, string]> = [['current', join(REPO_ROOT, 'dist', 'main.js')]];
    if (context.options.scaleOldMain) builds.push(['old', context.options.scaleOldMain]);
    for (const [label, main] of builds) await measureBuild(context, { label, main, dir: join(root, label), archive, repoint, script, shape });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

interface BuildRun {
  label: string;
  main: string;
  dir: string;
  archive: ScaleArchive;
  repoint: ScaleArchive;
  script: string;
  shape: ScaleShape;
}

async function measureBuild(context: ScaleContext, run: BuildRun): Promise<void> {
  mkdirSync(run.dir, { recursive: true });
  const sink = await startHostile();
  const config = join(run.dir, 'mirror.config.json');
  writeFileSync(config, JSON.stringify({
    listen: { host: '127.0.0.1', port: 0 }, cache: { dir: join(run.dir, 'cache'), maxBytes: 10 * 1024 ** 3 },
    tags: { ttlSeconds: TTL_S }, log: { level: 'warn' }, defaultUpstream: 'docker.io', upstreams: { 'docker.io': { url: sink.url } },
  }));
  const result: BenchResult = { bench: 'scale', build: run.label, main: run.main, tags: run.shape.tags, repositories: run.shape.repositories, load_at_start: loadavg().map((value) => round(value, 2)) };
  try {
    context.log(`scale [${run.label}]: import of ${run.archive.file}`);
    const imported = await timedCommand(run.main, ['import', '--config', config, run.archive.file], context.options.scaleImportTimeoutS);
    result.import_s = imported.timedOut ? null : round(imported.ms / 1000, 1);
    if (imported.timedOut || imported.code !== 0) {
      result.import_problem = imported.timedOut ? `did not finish within ${context.options.scaleImportTimeoutS} s` : `exit ${imported.code}: ${imported.output.slice(-300)}`;
      return;
    }
    await measureServer(context, run, config, result);
    result.upstream_requests = sink.requests.length;
    result.upstream_connections = sink.connections;
  } finally {
    result.targets_met = targetsMet(result);
    context.emit(result);
    await sink.close();
  }
}

async function measureServer(context: ScaleContext, run: BuildRun, config: string, result: Record<string, unknown>): Promise<void> {
  const server = await startServer(run.main, config);
  try {
    result.serve_v2_s = round(server.readyMs / 1000, 2);
    context.log(`scale [${run.label}]: /v2/ after ${result.serve_v2_s} s; warm resolution of random tags, ${CONNECTIONS} connections`);
    await runWrk(`${server.url}/v2/`, CONNECTIONS, 2, { Accept: MANIFEST_ACCEPT }, run.script);
    const warm = await runWrk(`${server.url}/v2/`, CONNECTIONS, context.options.durationS, { Accept: MANIFEST_ACCEPT }, run.script);
    result.resolve = wrkSummary(warm);
    result.rss_mb = rssMb(server.pid);
    const offline = await startServer(run.main, config, ['--offline']);
    try {
      result.tags_list_n50_ms = await listPages(offline.url, run.shape);
    } finally {
      await offline.stop();
    }
    context.log(`scale [${run.label}]: re-pointing ${REPOINTS} tags under the same load`);
    const loaded = runWrk(`${server.url}/v2/`, CONNECTIONS, Math.max(10, context.options.durationS), { Accept: MANIFEST_ACCEPT }, run.script);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const args = ['import', ...(run.label === 'old' ? [] : ['--retag']), '--config', config, run.repoint.file];
    const repointed = await timedCommand(run.main, args, 300);
    result.repoint = { import_s: round(repointed.ms / 1000, 2), exit: repointed.code, ...wrkSummary(await loaded) };
    result.repointed_tags_resolve = await checkSample(server.url, run.repoint.sample);
    result.rss_mb_end = rssMb(server.pid);
  } finally {
    await server.stop();
  }
}

/** Random repository and tag per request; the reporter's `done` hook appended. */
function wrkScript(file: string, shape: ScaleShape): string {
  const lua = `-- random tags of the scale archive (test/bench/scenarios/scale.ts)
local counter = 1
function setup(thread) thread:set("id", counter); counter = counter + 1 end
function init(args) math.randomseed(os.time() * 1000 + (id or 0)) end
request = function()
  local path = string.format("/v2/bench/repo-%05d/manifests/t%03d", math.random(0, ${shape.repositories - 1}), math.random(0, ${tagsPerRepository(shape) - 1}))
  return wrk.format("GET", path)
end
${readFileSync(WRK_REPORTER, 'utf8')}`;
  writeFileSync(file, lua);
  return file;
}

function wrkSummary(result: WrkResult) {
  return {
    req_per_s: round(result.requests / (result.durationUs / 1e6)),
    requests: result.requests,
    errors: result.errors,
    latency_ms: { p50: round(result.latencyUs.p50 / 1000, 2), p99: round(result.latencyUs.p99 / 1000, 2), max: round(result.latencyUs.max / 1000, 2) },
  };
}

async function listPages(base: string, shape: ScaleShape) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  try {
    for (let i = 0; i < LIST_PAGES; i++) {
      const repository = repositoryName(Math.floor(Math.random() * shape.repositories));
      const last = i % 2 === 0 ? '' : `&last=${tagName(Math.floor(Math.random() * 40))}`;
      const started = performance.now();
      const response = await get(`${base}/v2/${repository}/tags/list?n=50${last}`, agent);
      let body = '';
      for await (const chunk of response) body += chunk;
      times.push(performance.now() - started);
      if (response.statusCode !== 200 || (JSON.parse(body) as { tags: string[] }).tags.length === 0) throw new Error(`tags/list of ${repository}: ${response.statusCode} ${body.slice(0, 200)}`);
    }
  } finally {
    agent.destroy();
  }
  return { pages: LIST_PAGES, p50: round(percentile(times, 50), 2), p99: round(percentile(times, 99), 2), max: round(percentile(times, 100), 2) };
}

async function checkSample(base: string, sample: ScaleArchive['sample']): Promise<string> {
  const agent = new Agent({ keepAlive: false });
  try {
    for (const { repository, tag, digest } of sample) {
      const response = await get(`${base}/v2/${repository}/manifests/${tag}`, agent, { accept: MANIFEST_ACCEPT });
      response.resume();
      if (response.headers['docker-content-digest'] !== digest) return `${repository}:${tag} resolves to ${String(response.headers['docker-content-digest'])}, expected ${digest}`;
    }
    return 'ok';
  } finally {
    agent.destroy();
  }
}

/** The server's RSS with its workers (`serve` runs one per core by default). */
function rssMb(pid: number): { now: number | null; peak: number | null; peak_per_process: Array<number | null> } {
  const { now, peak } = treeRss(pid);
  const peaks = processTree(pid).map((p) => round(statusBytes(p, 'VmHWM') / 1024 / 1024));
  return { now: round(now / 1024 / 1024), peak: round(peak / 1024 / 1024), peak_per_process: peaks };
}

function targetsMet(result: Record<string, unknown>): Record<string, boolean | null> {
  const resolve = result.resolve as ReturnType<typeof wrkSummary> | undefined;
  const repoint = result.repoint as (ReturnType<typeof wrkSummary> & { import_s: number | null }) | undefined;
  const list = result.tags_list_n50_ms as { p99: number | null } | undefined;
  const rss = result.rss_mb_end as { peak: number | null } | undefined;
  const at = <T>(value: T | undefined, check: (value: T) => boolean) => (value === undefined ? null : check(value));
  return {
    import_under_120_s: at(result.import_s as number | null | undefined, (value) => value !== null && value < 120),
    v2_under_10_s: at(result.serve_v2_s as number | undefined, (value) => value < 10),
    rss_under_300_mb: at(rss, (value) => (value.peak ?? Infinity) < 300),
    resolve_5000_per_s: at(resolve, (value) => (value.req_per_s ?? 0) >= 5000),
    resolve_p99_under_20_ms: at(resolve, (value) => (value.latency_ms.p99 ?? Infinity) < 20),
    no_upstream_request: at(result.upstream_requests as number | undefined, (value) => value === 0),
    tags_list_under_50_ms: at(list, (value) => (value.p99 ?? Infinity) < 50),
    repoint_p99_under_50_ms: at(repoint, (value) => (value.latency_ms.p99 ?? Infinity) < 50),
  };
}
