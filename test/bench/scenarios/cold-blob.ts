/**
 * One cold blob (issue 16): the ~120 MiB layer of myorg/app:v1 fetched by one client from a
 * server restarted with an empty cache and primed (direct.ts primeServer), in interleaved rounds (rounds.ts) of direct (the client
 * fetching it from hub and its CDN itself), mirror and reference. Reports MB/s, time to the first
 * body byte and the total time, each round's ratios against the reference and direct taken in
 * the same round (their medians count), and the CPU seconds the server used per cold GB served
 * (/proc/<pid>/stat before the GET and after the upstream went quiet, so the fill's fsync and
 * publish, and any download the server finishes on its own, count too).
 */
import { runLoad } from '../load.js';
import { mirrors, type BenchContext } from '../context.js';
import { cpuSeconds } from '../cpu.js';
import { directHeaders, directTarget, primeServer } from '../direct.js';
import type { BlobResult } from '../registry-client.js';
import { interleavedRounds, median, medianRatio } from '../rounds.js';
import { MiB, round } from '../stats.js';
import type { Target, TargetName } from '../targets.js';
import type { UpstreamUsage } from '../upstream-meter.js';

export const BLOB_DEADLINE_MS = 300_000;
export const GB = 1e9;

/** One server's cold GET of the blob in one round. */
export interface ColdBlobRound {
  ms: number;
  ttfbMs: number;
  mbPerS: number;
  /** CPU seconds per GB served; null for direct (no server of ours) or without /proc. */
  cpuPerGb: number | null;
  /** Upstream traffic during the GET, where the upstream is metered. */
  upstream?: UpstreamUsage;
}

interface Round extends ColdBlobRound {
  upstream: UpstreamUsage;
}

export async function coldBlob(context: BenchContext): Promise<void> {
  const { app } = context.env;
  const blob = app.layers[0]!;
  const targets = [directTarget(context.env), ...mirrors(context)];
  const rounds = await interleavedRounds(targets, context.options.rounds, async (target, index) => {
    context.log(`cold blob: ${target.name}, round ${index}/${context.options.rounds}`);
    const measured = await measure(context, target, blob);
    context.emit({ bench: 'cold-blob-round', target: target.name, round: index, ms: round(measured.ms), ttfb_ms: round(measured.ttfbMs, 2), mb_per_s: round(measured.mbPerS), cpu_s_per_gb: round(measured.cpuPerGb, 2) });
    return measured;
  });
  emitColdBlobResults(context, 'cold-blob', blob.size, rounds);
}

/** One line per server: medians over the rounds, and the medians of per-round ratios against the reference and direct. */
export function emitColdBlobResults(context: BenchContext, bench: string, blobSize: number, rounds: Map<string, ColdBlobRound[]>): void {
  const reference = rounds.get('reference');
  const direct = rounds.get('direct');
  for (const [name, measured] of rounds) {
    const cpu = measured.map((entry) => entry.cpuPerGb).filter((value): value is number => value !== null);
    const upstreamBytes = measured.flatMap((entry) => (entry.upstream ? [entry.upstream.bytes / blobSize] : []));
    context.emit({
      bench,
      target: name as TargetName,
      blob_bytes: blobSize,
      rounds: measured.length,
      ms: round(median(measured.map((entry) => entry.ms))),
      ttfb_ms: round(median(measured.map((entry) => entry.ttfbMs)), 2),
      mb_per_s: round(median(measured.map((entry) => entry.mbPerS))),
      cpu_s_per_gb: round(median(cpu), 2),
      vs_reference: name === 'reference' ? null : {
        mb_per_s: medianRatio(measured, reference, (entry) => entry.mbPerS),
        ttfb: medianRatio(measured, reference, (entry) => entry.ttfbMs),
        cpu_s_per_gb: cpu.length === measured.length ? medianRatio(measured, reference, (entry) => entry.cpuPerGb ?? NaN) : null,
      },
      vs_direct: name === 'direct' ? null : { ms: medianRatio(measured, direct, (entry) => entry.ms), ttfb: medianRatio(measured, direct, (entry) => entry.ttfbMs) },
      round_mb_per_s: measured.map((entry) => round(entry.mbPerS)),
      round_ttfb_ms: measured.map((entry) => round(entry.ttfbMs, 2)),
      ...(upstreamBytes.length ? { upstream_bytes_vs_blob: round(median(upstreamBytes), 2) } : {}),
    });
  }
}

async function measure(context: BenchContext, target: Target, blob: { digest: string; size: number }): Promise<Round> {
  const { app } = context.env;
  await target.reset();
  await primeServer(context.env, target, BLOB_DEADLINE_MS);
  const headers = target.name === 'direct' ? await directHeaders(context.env, app.repo) : {};
  await context.meter.settle(300);
  const mark = context.meter.mark();
  const before = target.pid ? cpuSeconds(target.pid) : null;
  const result = await runLoad<BlobResult>({ kind: 'blob', base: target.url, repo: app.repo, digest: blob.digest, size: blob.size, headers }, BLOB_DEADLINE_MS);
  await context.meter.settle(1_000, 120_000);
  const after = target.pid ? cpuSeconds(target.pid) : null;
  const cpuPerGb = before === null || after === null ? null : (after - before) / (result.bytes / GB);
  return { ms: result.ms, ttfbMs: result.ttfbMs, mbPerS: result.bytes / MiB / (result.ms / 1000), cpuPerGb, upstream: context.meter.since(mark) };
}
