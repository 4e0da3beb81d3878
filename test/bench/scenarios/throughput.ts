/**
 * Warm blob throughput (issue 8): wrk with 8 connections for a fixed duration on the ~30 MiB and
 * the ~3 MiB layer, after the server has them cached, for the mirror (alone and behind nginx in
 * accel mode), the reference and nginx
 * serving the same files with sendfile (the ceiling). Reports MB/s, req/s, latency and any
 * upstream request made during the run (a warm cache makes none).
 */
import { Agent } from 'node:http';
import type { BenchContext } from '../context.js';
import { getBlob } from '../registry-client.js';
import { runWrk } from '../wrk.js';
import { round, MiB } from '../stats.js';
import type { Target } from '../targets.js';

const CONNECTIONS = 8;

export async function throughput(context: BenchContext): Promise<void> {
  const { app } = context.env;
  const blobs = { '30MiB': app.layers[1]!, '3MiB': app.layers[2]! };
  // Per blob, the servers run back to back (ceiling first), so each ratio compares runs made
  // under the same conditions on a machine whose background load drifts.
  const order = (['nginx', 'mirror', 'mirror+nginx', 'reference'] as const).flatMap((name) => context.targets.get(name) ?? []);
  for (const [label, blob] of Object.entries(blobs)) {
    for (const target of order) {
      context.log(`throughput: ${target.name}, ${label} blob, ${context.options.durationS} s`);
      await warm(target, app.repo, blob.digest, blob.size);
      await context.meter.settle(500);
      const mark = context.meter.mark();
      const result = await runWrk(`${target.url}/v2/${app.repo}/blobs/${blob.digest}`, CONNECTIONS, context.options.durationS);
      await context.meter.settle(500);
      const seconds = result.durationUs / 1e6;
      context.emit({
        bench: 'blob-throughput',
        target: target.name,
        blob: label,
        blob_bytes: blob.size,
        connections: CONNECTIONS,
        duration_s: round(seconds, 2),
        requests: result.requests,
        errors: result.errors,
        mb_per_s: round(result.bytes / MiB / seconds),
        req_per_s: round(result.requests / seconds),
        latency_ms: { p50: round(result.latencyUs.p50 / 1000, 2), p99: round(result.latencyUs.p99 / 1000, 2), max: round(result.latencyUs.max / 1000, 2) },
        upstream_during_run: context.meter.since(mark),
      });
    }
  }
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
