/**
 * One cold blob from a fast upstream (issue 16): the ~120 MiB layer of myorg/app:v1 pushed to a
 * registry:2 of its own (no auth, no redirect, no byte taps in between), fetched by one client
 * through the mirror and through the reference proxying that registry, and straight from it
 * (direct), in interleaved rounds, each server restarted with an empty cache and primed with
 * two other blobs first (a `serve` on two cores has two workers, and the cluster hands
 * connections to them in turn: each worker has then run a miss once, as in service). The cold-blob scenario's upstream is the test bed's hub and CDN behind
 * counting proxies in one Node process, which carry 100-160 MB/s here and so cap every server
 * alike; this one shows what the servers themselves can do. Reports MB/s, first byte, and the CPU
 * seconds each server used per GB, with the median of per-round ratios against the reference.
 */
import { mkdirSync } from 'node:fs';
import { Agent } from 'node:http';
import { join } from 'node:path';
import type { BenchContext } from '../context.js';
import { cpuSeconds } from '../cpu.js';
import { pushMonolithic } from '../push-client.js';
import { startRegistry2 } from '../push-targets.js';
import { runLoad } from '../load.js';
import type { BlobResult } from '../registry-client.js';
import { interleavedRounds } from '../rounds.js';
import { MiB, round } from '../stats.js';
import { startMirrorTarget, startReferenceTarget, type Target } from '../targets.js';
import { BLOB_DEADLINE_MS, GB, emitColdBlobResults, type ColdBlobRound } from './cold-blob.js';

export async function coldRegistry(context: BenchContext): Promise<void> {
  const { app } = context.env;
  const [blob, ...primers] = app.layers;
  const dir = join(context.workDir, 'cold-registry');
  mkdirSync(dir, { recursive: true });
  const upstream = await startRegistry2(join(dir, 'upstream'));
  const stops: Array<() => Promise<void>> = [() => upstream.stop()];
  try {
    const agent = new Agent({ keepAlive: true });
    for (const file of [blob!, ...primers]) await pushMonolithic(upstream.url, app.repo, file, agent);
    agent.destroy();
    const remote = { url: upstream.url };
    const direct: Target = { name: 'direct', url: upstream.url, pid: 0, reset: async () => undefined, stop: async () => undefined };
    const mirror = await startMirrorTarget(join(dir, 'mirror'), context.env, remote);
    stops.push(() => mirror.stop());
    const reference = await startReferenceTarget(join(dir, 'reference'), context.env, remote);
    stops.push(() => reference.stop());
    const targets = [direct, mirror, reference];
    const rounds = await interleavedRounds(targets, context.options.rounds, async (target, index) => {
      context.log(`cold blob from registry:2: ${target.name}, round ${index}/${context.options.rounds}`);
      const measured = await measure(target, app.repo, blob!, primers);
      context.emit({ bench: 'cold-registry-round', target: target.name, round: index, ms: round(measured.ms), ttfb_ms: round(measured.ttfbMs, 2), mb_per_s: round(measured.mbPerS), cpu_s_per_gb: round(measured.cpuPerGb, 2) });
      return measured;
    });
    emitColdBlobResults(context, 'cold-registry', blob!.size, rounds);
  } finally {
    for (const stop of stops.reverse()) await stop().catch((error: Error) => context.log(`stop failed: ${error.message}`));
  }
}

async function measure(target: Target, repo: string, blob: { digest: string; size: number }, primers: { digest: string; size: number }[]): Promise<ColdBlobRound> {
  await target.reset();
  // Loads the server's code and opens its upstream connections, as a server in service has.
  for (const primer of primers) await runLoad<BlobResult>({ kind: 'blob', base: target.url, repo, digest: primer.digest, size: primer.size, headers: {} }, BLOB_DEADLINE_MS);
  const before = target.pid ? cpuSeconds(target.pid) : null;
  const result = await runLoad<BlobResult>({ kind: 'blob', base: target.url, repo, digest: blob.digest, size: blob.size, headers: {} }, BLOB_DEADLINE_MS);
  // The fill's fsync and publish finish after the last byte went out: wait for the server to go quiet.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const after = target.pid ? cpuSeconds(target.pid) : null;
  const cpuPerGb = before === null || after === null ? null : (after - before) / (result.bytes / GB);
  return { ms: result.ms, ttfbMs: result.ttfbMs, mbPerS: result.bytes / MiB / (result.ms / 1000), cpuPerGb };
}
