/**
 * Warm blob throughput (issue 8): wrk with 8 connections on the ~30 MiB and the ~3 MiB layer,
 * after the server has them cached, for the mirror (alone and behind nginx in accel mode), the
 * reference, nginx serving the same files with sendfile (the ceiling), and Node's HTTP server
 * sending them with the mirror's sendfile path and nothing else (node-sendfile-server.ts: the
 * ceiling of a server built on Node). Reports MB/s, req/s, latency and any upstream request made
 * during the run (a warm cache makes none).
 *
 * The servers are measured in interleaved rounds (rounds.ts: nginx, mirror, node-sendfile,
 * mirror+nginx, reference, then again) of `--duration / 2` seconds each. Every round yields a
 * ratio against the nginx measurement just before it; a server's reported ratio is the median
 * of its rounds' ratios, and its reported rate the median of its rounds' rates.
 *
 * Before its rounds every server gets `--warmup` seconds of the same load, unmeasured: what is
 * compared is a server's steady state. The mirror's per-request JavaScript is optimized by V8
 * only after some thousands of requests: on the 3 MiB blob, six back-to-back 3 s runs of a
 * fresh mirror went 440, 448, 474, 514, 494, 510 req/s against nginx's 527 (docs/benchmarks.md),
 * and without the warm-up its first round measured that climb. nginx and the reference are
 * compiled and get the same warm-up all the same.
 */
import { Agent } from 'node:http';
import type { BenchContext } from '../context.js';
import { getBlob } from '../registry-client.js';
import { runWrk, sumWrkErrors, type WrkResult } from '../wrk.js';
import { round, MiB } from '../stats.js';
import { interleavedRounds, median, medianRatio, roundSeconds } from '../rounds.js';
import type { Target } from '../targets.js';
import { sumUpstreamUsage, type UpstreamUsage } from '../upstream-meter.js';

const CONNECTIONS = 8;

interface Round {
  result: WrkResult;
  seconds: number;
  mbPerS: number;
  reqPerS: number;
  upstream: UpstreamUsage;
}

export async function throughput(context: BenchContext): Promise<void> {
  const { app } = context.env;
  const blobs = { '30MiB': app.layers[1]!, '3MiB': app.layers[2]! };
  const order = (['nginx', 'mirror', 'node-sendfile', 'mirror+nginx', 'reference'] as const).flatMap((name) => context.targets.get(name) ?? []);
  const durationS = roundSeconds(context.options.durationS);
  for (const [label, blob] of Object.entries(blobs)) {
    const blobUrl = (target: Target) => `${target.url}/v2/${app.repo}/blobs/${blob.digest}`;
    for (const target of order) {
      await warm(target, app.repo, blob.digest, blob.size);
      context.log(`throughput: ${target.name}, ${label} blob, warm-up, ${context.options.warmupS} s`);
      await runWrk(blobUrl(target), CONNECTIONS, context.options.warmupS);
    }
    const rounds = await interleavedRounds(order, context.options.rounds, async (target, index) => {
      context.log(`throughput: ${target.name}, ${label} blob, round ${index}/${context.options.rounds}, ${durationS} s`);
      const measured = await measure(context, blobUrl(target), durationS);
      context.emit({ bench: 'blob-throughput-round', target: target.name, blob: label, round: index, mb_per_s: round(measured.mbPerS), req_per_s: round(measured.reqPerS), errors: measured.result.errors });
      return measured;
    });
    const ceiling = rounds.get('nginx');
    for (const target of order) {
      const measured = rounds.get(target.name)!;
      const typical = measured.find((entry) => entry.reqPerS === median(measured.map((other) => other.reqPerS))) ?? measured[0]!;
      context.emit({
        bench: 'blob-throughput',
        target: target.name,
        blob: label,
        blob_bytes: blob.size,
        connections: CONNECTIONS,
        rounds: measured.length,
        warmup_s: context.options.warmupS,
        duration_s: round(measured.reduce((sum, entry) => sum + entry.seconds, 0), 2),
        requests: measured.reduce((sum, entry) => sum + entry.result.requests, 0),
        errors: sumWrkErrors(measured.map((entry) => entry.result.errors)),
        mb_per_s: round(median(measured.map((entry) => entry.mbPerS))),
        req_per_s: round(median(measured.map((entry) => entry.reqPerS))),
        vs_nginx: { mb_per_s: medianRatio(measured, ceiling, (entry) => entry.mbPerS), req_per_s: medianRatio(measured, ceiling, (entry) => entry.reqPerS) },
        round_req_per_s: measured.map((entry) => round(entry.reqPerS)),
        latency_ms: { p50: round(typical.result.latencyUs.p50 / 1000, 2), p99: round(typical.result.latencyUs.p99 / 1000, 2), max: round(typical.result.latencyUs.max / 1000, 2) },
        upstream_during_run: sumUpstreamUsage(measured.map((entry) => entry.upstream)),
      });
    }
  }
}

async function measure(context: BenchContext, url: string, durationS: number): Promise<Round> {
  await context.meter.settle(500);
  const mark = context.meter.mark();
  const result = await runWrk(url, CONNECTIONS, durationS);
  await context.meter.settle(500);
  const seconds = result.durationUs / 1e6;
  return { result, seconds, mbPerS: result.bytes / MiB / seconds, reqPerS: result.requests / seconds, upstream: context.meter.since(mark) };
}

/** Two verified GETs: the first may pull through, the second proves the cached copy is right. */
async function warm(target: Target, repo: string, digest: string, size: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await getBlob(target.url, repo, digest, size, agent);
    await getBlob(target.url, repo, digest, size, agent);
  } finally {
    agent.destroy();
  }
}
