/**
 * Warm tag resolution (issue 8): after one pull of the small image, wrk with 16 connections on
 * GET /v2/<repo>/manifests/<tag> with a container client's Accept header, within the tag TTL.
 * Reports req/s, p50/p99 latency and upstream requests per client request (0 for a mirror that
 * trusts its TTL; the reference asks hub for every one). Interleaved rounds (rounds.ts): rates,
 * ratios and percentiles are medians over the rounds.
 */
import { Agent } from 'node:http';
import { mirrors, type BenchContext } from '../context.js';
import { get, MANIFEST_ACCEPT } from '../registry-client.js';
import { runWrk, sumWrkErrors, type WrkResult } from '../wrk.js';
import { interleavedRounds, median, medianRatio, roundSeconds } from '../rounds.js';
import { sumUpstreamUsage, type UpstreamUsage } from '../upstream-meter.js';
import { round } from '../stats.js';

const CONNECTIONS = 16;

export async function tags(context: BenchContext): Promise<void> {
  const { repo, tag } = context.env.small;
  const order = mirrors(context, { withFront: true });
  const durationS = roundSeconds(context.options.durationS);
  for (const target of order) await prime(`${target.url}/v2/${repo}/manifests/${tag}`);
  const rounds = await interleavedRounds(order, context.options.rounds, async (target, index) => {
    context.log(`tags: ${target.name}, round ${index}/${context.options.rounds}, ${durationS} s`);
    await context.meter.settle(500);
    const mark = context.meter.mark();
    const result = await runWrk(`${target.url}/v2/${repo}/manifests/${tag}`, CONNECTIONS, durationS, { Accept: MANIFEST_ACCEPT });
    await context.meter.settle(500);
    const measured: Round = { result, reqPerS: result.requests / (result.durationUs / 1e6), upstream: context.meter.since(mark) };
    context.emit({ bench: 'tag-resolution-round', target: target.name, round: index, req_per_s: round(measured.reqPerS), p99_ms: round(result.latencyUs.p99 / 1000, 2) });
    return measured;
  });
  const reference = rounds.get('reference');
  for (const target of order) {
    const measured = rounds.get(target.name)!;
    const requests = measured.reduce((sum, entry) => sum + entry.result.requests, 0);
    const upstream = sumUpstreamUsage(measured.map((entry) => entry.upstream));
    const latency = (key: 'p50' | 'p90' | 'p99' | 'max') => round(median(measured.map((entry) => entry.result.latencyUs[key] / 1000)), 2);
    context.emit({
      bench: 'tag-resolution',
      target: target.name,
      image: `${repo}:${tag}`,
      connections: CONNECTIONS,
      rounds: measured.length,
      duration_s: round(measured.reduce((sum, entry) => sum + entry.result.durationUs / 1e6, 0), 2),
      requests,
      errors: sumWrkErrors(measured.map((entry) => entry.result.errors)),
      req_per_s: round(median(measured.map((entry) => entry.reqPerS))),
      vs_reference: medianRatio(measured, reference, (entry) => entry.reqPerS),
      // Medians over the rounds of each round's percentile.
      latency_ms: { p50: latency('p50'), p90: latency('p90'), p99: latency('p99'), max: latency('max') },
      round_p99_ms: measured.map((entry) => round(entry.result.latencyUs.p99 / 1000, 2)),
      upstream_per_request: round(upstream.requests / Math.max(1, requests), 3),
      upstream,
    });
  }
}

interface Round {
  result: WrkResult;
  reqPerS: number;
  upstream: UpstreamUsage;
}

async function prime(url: string): Promise<void> {
  const agent = new Agent({ keepAlive: false });
  try {
    const response = await get(url, agent, { accept: MANIFEST_ACCEPT });
    response.resume();
    if (response.statusCode !== 200) throw new Error(`priming ${url}: status ${response.statusCode}`);
  } finally {
    agent.destroy();
  }
}
