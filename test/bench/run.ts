/**
 * `npm run bench`: starts the upstreams (hub with token auth and a CDN, via the interop support),
 * this mirror (alone, and behind nginx in accel mode as deploy/nginx configures it), the reference (distribution 2.8 in proxy mode, when `docker-registry` is installed)
 * and nginx (the sendfile ceiling, when installed), all on 127.0.0.1 with OS-assigned ports and
 * all state in one temporary directory; runs the scenarios; prints one JSON line per result on
 * stdout and a summary table on stderr; stops everything by PID.
 *
 *   npm run bench -- [--only cold,cold-blob,cold-registry,warm,herd,throughput,tags,memory,push,auth,replicas,workers,scale] [--skip-memory]
 *                    [--duration 10] [--rounds 3] [--clients 20,50] [--json results.jsonl]
 *                    [--scale-tags 200000] [--scale-repositories 2000] [--scale-old-main FILE] [--scale-import-timeout 300]
 *
 * `scale` starts its own mirror on a generated cache; run alone (`--only scale`) it starts none of
 * the shared upstreams.
 */
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ensureMirrorBuilt } from '../interop/support/mirror.js';
import { startBenchUpstreams, type BenchUpstreams } from './bench-upstreams.js';
import { UpstreamMeter } from './upstream-meter.js';
import { startMirrorNginxTarget, startMirrorTarget, startNginxTarget, startNodeSendfileTarget, startReferenceTarget, type Target, type TargetName } from './targets.js';
import { SCENARIOS, STANDALONE_SCENARIOS, type BenchContext, type BenchOptions, type BenchResult, type ScenarioName } from './context.js';
import { describeMachine, versionOf } from './machine.js';
import { formatTable, summaryRows } from './summary.js';
import { coldPull, warmPull } from './scenarios/pulls.js';
import { coldBlob } from './scenarios/cold-blob.js';
import { coldRegistry } from './scenarios/cold-registry.js';
import { herd } from './scenarios/herd.js';
import { throughput } from './scenarios/throughput.js';
import { tags } from './scenarios/tags.js';
import { memory } from './scenarios/memory.js';
import { push } from './scenarios/push.js';
import { authFlood } from './scenarios/auth-flood.js';
import { replicas } from './scenarios/replicas.js';
import { workers } from './scenarios/workers.js';
import { scale } from './scenarios/scale.js';

const RUNNERS: Record<ScenarioName, (context: BenchContext) => Promise<void>> = { cold: coldPull, 'cold-blob': coldBlob, 'cold-registry': coldRegistry, warm: warmPull, herd, throughput, tags, memory, push, auth: authFlood, replicas, workers, scale };

function parseOptions(argv: string[]): BenchOptions {
  const positiveInt = (name: string) => (value: string) => {
    const number = Number(value);
    if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError(`expected ${name} to be a positive integer, got ${JSON.stringify(value)}`);
    return number;
  };
  const program = new Command('bench')
    .option('--only <list>', `scenarios to run: ${SCENARIOS.join(',')}`, SCENARIOS.join(','))
    .option('--skip-memory', 'skip the 1 GiB memory scenario')
    .option('--duration <seconds>', 'wrk duration per measurement', positiveInt('--duration'), 10)
    .option('--warmup <seconds>', 'throughput: unmeasured wrk load on each server and blob before the rounds', positiveInt('--warmup'), 10)
    .option('--rounds <n>', 'throughput, cold, cold-blob, cold-registry: interleaved rounds (the median counts)', positiveInt('--rounds'), 3)
    .option('--clients <list>', 'herd sizes', '20,50')
    .option('--json <file>', 'also append every result line to this file')
    .option('--scale-tags <n>', 'scale: tags in the generated archive', positiveInt('--scale-tags'), 200_000)
    .option('--scale-repositories <n>', 'scale: repositories they are spread over', positiveInt('--scale-repositories'), 2_000)
    .option('--scale-old-main <file>', 'scale: also measure this build (dist/main.js of an earlier release)')
    .option('--scale-import-timeout <seconds>', 'scale: cut an import off after this long', positiveInt('--scale-import-timeout'), 300)
    .parse(argv);
  const raw = program.opts<{ only: string; skipMemory?: boolean; duration: number; warmup: number; rounds: number; clients: string; json?: string; scaleTags: number; scaleRepositories: number; scaleOldMain?: string; scaleImportTimeout: number }>();
  const only = new Set(raw.only.split(',').map((name) => name.trim()).filter(Boolean));
  for (const name of only) if (!(SCENARIOS as readonly string[]).includes(name)) program.error(`--only: unknown scenario ${JSON.stringify(name)} (expected ${SCENARIOS.join(',')})`);
  if (raw.skipMemory) only.delete('memory');
  const clients = raw.clients.split(',').map(positiveInt('--clients'));
  return {
    only: only as Set<ScenarioName>, durationS: raw.duration, warmupS: raw.warmup, rounds: raw.rounds, clients, ...(raw.json ? { jsonFile: raw.json } : {}),
    scaleTags: raw.scaleTags, scaleRepositories: raw.scaleRepositories, scaleImportTimeoutS: raw.scaleImportTimeout, ...(raw.scaleOldMain ? { scaleOldMain: raw.scaleOldMain } : {}),
  };
}

/** Starts the servers to measure; each one's stop goes into `stops` as soon as it runs. */
async function startTargets(root: string, env: BenchUpstreams, stops: Array<() => Promise<void>>, emit: (result: BenchResult) => void): Promise<Map<TargetName, Target>> {
  const targets = new Map<TargetName, Target>();
  const add = (target: Target) => {
    targets.set(target.name, target);
    stops.push(() => target.stop());
  };
  add(await startMirrorTarget(join(root, 'mirror'), env));
  if (versionOf('docker-registry', ['--version'])) add(await startReferenceTarget(join(root, 'reference'), env));
  else emit({ bench: 'note', note: 'docker-registry is not installed: the reference columns are skipped' });
  if (versionOf('nginx', ['-v'])) {
    add(await startNginxTarget(join(root, 'nginx'), env.seedDir));
    add(await startNodeSendfileTarget(join(root, 'node-sendfile'), env.seedDir));
    add(await startMirrorNginxTarget(join(root, 'mirror-nginx'), env));
  } else emit({ bench: 'note', note: 'nginx is not installed: the nginx ceiling, mirror+nginx and the ratios against nginx are skipped' });
  return targets;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv);
  const log = (line: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  const results: BenchResult[] = [];
  const emit = (result: BenchResult) => {
    results.push(result);
    const line = `${JSON.stringify(result)}\n`;
    process.stdout.write(line);
    if (options.jsonFile) appendFileSync(options.jsonFile, line);
  };
  const machine = describeMachine();
  if (machine.wrk === 'missing') throw new Error('wrk is required (Debian: apt-get install wrk)');
  emit({ bench: 'machine', ...machine, started_at: new Date().toISOString(), scenarios: [...options.only] });
  if ((machine.load_at_start[0] ?? 0) >= 1) log(`warning: load average ${machine.load_at_start.join(' ')} at start; other work on this machine skews the numbers`);

  const root = mkdtempSync(join(tmpdir(), 'registry-mirror-bench-'));
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch((error: Error) => log(`stop failed: ${error.message}`));
    // BENCH_KEEP=1 keeps the logs and caches for a look afterwards (docs/benchmarks.md).
    if (process.env.BENCH_KEEP) log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  };
  const interrupted = () => void stopAll().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    ensureMirrorBuilt();
    if ([...options.only].every((name) => STANDALONE_SCENARIOS.includes(name))) {
      for (const name of STANDALONE_SCENARIOS) if (options.only.has(name)) await scale({ options, emit, log });
      return;
    }
    log(`state in ${root}; starting upstreams`);
    const env = await startBenchUpstreams(root, options.only.has('memory'), log);
    stops.push(() => env.stop());
    const targets = await startTargets(root, env, stops, emit);
    log(`targets: ${[...targets.values()].map((target) => `${target.name} ${target.url}`).join(', ')}`);
    const context: BenchContext = { env, meter: new UpstreamMeter(env), targets, options, workDir: root, emit, log };
    for (const name of SCENARIOS) if (options.only.has(name)) await RUNNERS[name](context);
    const rows = summaryRows(results);
    emit({ bench: 'summary', rows });
    process.stderr.write(`\n${formatTable(rows)}\n\n`);
  } finally {
    await stopAll();
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exit(1);
});
