/**
 * Workers (issue 15 item 9 and its done-when): the mirror with `serve --workers 2` against the
 * same mirror with `--workers 1`, each on its own fresh cache:
 *
 *   - warm ~3 MiB blob, req/s with wrk (8 connections; wrk runs on the same cores as the
 *     mirror), in interleaved rounds (rounds.ts): the ratio is the median of per-round ratios,
 *     target >= 1.3x. nginx with `worker_processes 2` against 1, serving the same file with
 *     sendfile, is measured in the same rounds: what a second process gains on these cores when
 *     the bytes cost nothing but the kernel's copies (the ceiling of the mirror's ratio);
 *   - a 50-client herd on the cold ~120 MiB layer with `--workers 2`: blob GETs that reached hub
 *     and its CDN (target: 1), and every client's time to first byte.
 */
import { Agent } from 'node:http';
import { join } from 'node:path';
import { startMirror, type RunningMirror } from '../../interop/support/mirror.js';
import { HUB_PASSWORD, HUB_USER } from '../../interop/support/token-server.js';
import type { BenchContext } from '../context.js';
import { runLoad, type HerdOutcome } from '../load.js';
import { getBlob } from '../registry-client.js';
import { interleavedRounds, median, medianRatio, roundSeconds } from '../rounds.js';
import { round, spread, MiB } from '../stats.js';
import { startNginxTarget, type Target } from '../targets.js';
import { runWrk, type WrkResult } from '../wrk.js';

const CONNECTIONS = 8;
const HERD_CLIENTS = 50;
const HERD_DEADLINE_MS = 600_000;

export async function workers(context: BenchContext): Promise<void> {
  const root = join(context.env.seedDir, '..', 'workers');
  const started = new Map<number, RunningMirror>();
  try {
    for (const count of [2, 1]) started.set(count, await startWorkers(context, join(root, `workers-${count}-warm`), count));
    await throughput(context, started);
    for (const mirror of started.values()) await mirror.stop();
    started.clear();
    const cold = await startWorkers(context, join(root, 'workers-2-herd'), 2);
    started.set(2, cold);
    await herd(context, cold);
  } finally {
    for (const mirror of started.values()) await mirror.stop();
  }
}

function startWorkers(context: BenchContext, dir: string, count: number): Promise<RunningMirror> {
  const { env } = context;
  const overrides = {
    log: { level: 'warn' },
    upstreams: {
      'docker.io': { url: env.hubTap.url, username: HUB_USER, password: HUB_PASSWORD, tokenRealms: [`127.0.0.1:${env.upstreams.token.port}`], redirectHosts: [new URL(env.cdnTap.url).host] },
    },
  };
  return startMirror(dir, env.upstreams, overrides, { args: ['--workers', String(count)] });
}

/** One server of the throughput rounds: a mirror or nginx, named with its number of processes. */
interface Server {
  name: `${'mirror' | 'nginx'}-${1 | 2}`;
  url: string;
}

interface Measured {
  reqPerS: number;
  errors: WrkResult['errors'];
}

async function throughput(context: BenchContext, mirrors: Map<number, RunningMirror>): Promise<void> {
  const { app } = context.env;
  const blob = app.layers[2]!;
  const nginx: Target[] = [];
  try {
    for (const processes of [2, 1]) nginx.push(await startNginxTarget(join(context.env.seedDir, '..', 'workers', `nginx-${processes}`), context.env.seedDir, processes));
    const servers: Server[] = [
      { name: 'mirror-2', url: mirrors.get(2)!.url },
      { name: 'mirror-1', url: mirrors.get(1)!.url },
      { name: 'nginx-2', url: nginx[0]!.url },
      { name: 'nginx-1', url: nginx[1]!.url },
    ];
    for (const server of servers) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      await getBlob(server.url, app.repo, blob.digest, blob.size, agent).finally(() => agent.destroy());
    }
    const seconds = roundSeconds(context.options.durationS);
    const results = await interleavedRounds(servers, context.options.rounds, async (server, index): Promise<Measured> => {
      context.log(`workers: ${server.name}, warm ${round(blob.size / MiB)} MiB blob, round ${index}/${context.options.rounds}, ${seconds} s`);
      const result = await runWrk(`${server.url}/v2/${app.repo}/blobs/${blob.digest}`, CONNECTIONS, seconds);
      return { reqPerS: result.requests / (result.durationUs / 1e6), errors: result.errors };
    });
    const of = (name: Server['name']) => results.get(name)!;
    const [two, one, nginxTwo, nginxOne] = [of('mirror-2'), of('mirror-1'), of('nginx-2'), of('nginx-1')];
    const reqPerS = (entries: Measured[]) => round(median(entries.map((entry) => entry.reqPerS)));
    context.emit({
      bench: 'workers-throughput',
      target: 'mirror',
      blob_bytes: blob.size,
      connections: CONNECTIONS,
      rounds: two.length,
      workers_2_req_per_s: reqPerS(two),
      workers_1_req_per_s: reqPerS(one),
      ratio: medianRatio(two, one, (entry) => entry.reqPerS),
      round_ratios: two.map((entry, index) => round(entry.reqPerS / one[index]!.reqPerS, 2)),
      nginx_2_req_per_s: reqPerS(nginxTwo),
      nginx_1_req_per_s: reqPerS(nginxOne),
      nginx_ratio: medianRatio(nginxTwo, nginxOne, (entry) => entry.reqPerS),
      nginx_round_ratios: nginxTwo.map((entry, index) => round(entry.reqPerS / nginxOne[index]!.reqPerS, 2)),
      workers_1_vs_nginx_1: medianRatio(one, nginxOne, (entry) => entry.reqPerS),
      errors: [...two, ...one, ...nginxTwo, ...nginxOne].map((entry) => entry.errors),
    });
  } finally {
    for (const server of nginx) await server.stop();
  }
}

async function herd(context: BenchContext, mirror: RunningMirror): Promise<void> {
  const { app } = context.env;
  const blob = app.layers[0]!;
  context.log(`workers: --workers 2, ${HERD_CLIENTS}-client herd on a cold ${round(blob.size / MiB)} MiB blob`);
  const mark = context.meter.mark();
  const outcome = await runLoad<HerdOutcome>({ kind: 'herd', base: mirror.url, repo: app.repo, digest: blob.digest, size: blob.size, clients: HERD_CLIENTS, verify: true }, HERD_DEADLINE_MS);
  await context.meter.settle(1_500, 180_000);
  const gets = context.meter.blobGets(mark, blob.digest);
  context.emit({
    bench: 'workers-herd',
    target: 'mirror',
    workers: 2,
    clients: HERD_CLIENTS,
    blob_bytes: blob.size,
    ok_clients: outcome.clientMs.length,
    failures: outcome.failures,
    wall_ms: Math.round(outcome.wallMs),
    ttfb_ms: spread(outcome.ttfbMs),
    client_ms: spread(outcome.clientMs),
    upstream_blob_gets: { hub: gets.hub, cdn: gets.cdn, hub_heads: gets.hubHeads, hub_401: gets.hubChallenges },
  });
}
