/**
 * Warm tag resolution (issue 8): after one pull of the small image, wrk with 16 connections on
 * GET /v2/<repo>/manifests/<tag> with a container client's Accept header, within the tag TTL.
 * Reports req/s, p50/p99 latency and upstream requests per client request (0 for a mirror that
 * trusts its TTL; the reference asks hub for every one).
 */
import { Agent } from 'node:http';
import { mirrors, type BenchContext } from '../context.js';
import { get, MANIFEST_ACCEPT } from '../registry-client.js';
import { runWrk } from '../wrk.js';
import { round } from '../stats.js';

const CONNECTIONS = 16;

export async function tags(context: BenchContext): Promise<void> {
  const { repo, tag } = context.env.small;
  for (const target of mirrors(context, { withFront: true })) {
    context.log(`tags: ${target.name}, ${context.options.durationS} s`);
    const url = `${target.url}/v2/${repo}/manifests/${tag}`;
    await prime(url);
    await context.meter.settle(500);
    const mark = context.meter.mark();
    const result = await runWrk(url, CONNECTIONS, context.options.durationS, { Accept: MANIFEST_ACCEPT });
    await context.meter.settle(500);
    const upstream = context.meter.since(mark);
    const seconds = result.durationUs / 1e6;
    context.emit({
      bench: 'tag-resolution',
      target: target.name,
      image: `${repo}:${tag}`,
      connections: CONNECTIONS,
      duration_s: round(seconds, 2),
      requests: result.requests,
      errors: result.errors,
      req_per_s: round(result.requests / seconds),
      latency_ms: { p50: round(result.latencyUs.p50 / 1000, 2), p90: round(result.latencyUs.p90 / 1000, 2), p99: round(result.latencyUs.p99 / 1000, 2), max: round(result.latencyUs.max / 1000, 2) },
      upstream_per_request: round(upstream.requests / Math.max(1, result.requests), 3),
      upstream,
    });
  }
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
