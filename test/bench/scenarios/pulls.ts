/**
 * Cold pulls (issue 16): myorg/app:v1 (config and 3 layers, ~158 MB: bound by bytes) and
 * library/busybox:latest (20 small layers: bound by round trips), each pulled like a container
 * client (tag -> manifest -> config + layers, 3 downloads at once, every digest verified) from a
 * server restarted with an empty cache and primed (direct.ts primeServer), in interleaved rounds (rounds.ts) of direct (the client
 * pulling from hub itself, token in hand), mirror and reference. Reports each server's median
 * time, the medians of its per-round ratios against direct and the reference, the CPU seconds it
 * used per GB pulled, and what the upstream saw: requests by kind and bytes against the image's
 * own size (a mirror that fetches each byte once reaches 1.0x).
 * Warm pull: after a priming pull, a second client pulls the same image; a perfect cache causes
 * no upstream request at all within the tag TTL.
 */
import { runLoad } from '../load.js';
import { mirrors, type BenchContext } from '../context.js';
import { cpuSeconds } from '../cpu.js';
import { directHeaders, directTarget, primeServer } from '../direct.js';
import { interleavedRounds, median, medianRatio } from '../rounds.js';
import { mbPerSecond, ratio, round } from '../stats.js';
import type { PullResult } from '../registry-client.js';
import type { Target, TargetName } from '../targets.js';
import { sumUpstreamUsage, type UpstreamUsage } from '../upstream-meter.js';

const PULL_DEADLINE_MS = 300_000;

interface PulledImage {
  repo: string;
  tag: string;
  totalBytes: number;
}

async function measuredPull(context: BenchContext, target: Target, image: PulledImage = context.env.app, headers: Record<string, string> = {}) {
  const mark = context.meter.mark();
  let result: PullResult | undefined;
  let error: string | undefined;
  try {
    result = await runLoad<PullResult>({ kind: 'pull', base: target.url, repo: image.repo, tag: image.tag, parallel: 3, headers }, PULL_DEADLINE_MS);
  } catch (failure) {
    error = (failure as Error).message;
  }
  await context.meter.settle();
  const upstream = context.meter.since(mark);
  return {
    target: target.name,
    image: `${image.repo}:${image.tag}`,
    ok: !error,
    ...(error ? { error } : {}),
    ms: result ? Math.round(result.ms) : null,
    mb_per_s: result ? mbPerSecond(result.bytes, result.ms) : null,
    image_bytes: image.totalBytes,
    upstream,
  };
}

interface ColdRound {
  ms: number;
  cpuS: number | null;
  upstream: UpstreamUsage;
}

export async function coldPull(context: BenchContext): Promise<void> {
  const targets = [directTarget(context.env), ...mirrors(context)];
  for (const image of [context.env.app, context.env.layered]) {
    const rounds = await interleavedRounds(targets, context.options.rounds, async (target, index) => {
      context.log(`cold pull: ${image.repo}:${image.tag}, ${target.name}, round ${index}/${context.options.rounds}`);
      await target.reset();
      await primeServer(context.env, target, PULL_DEADLINE_MS);
      const headers = target.name === 'direct' ? await directHeaders(context.env, image.repo) : {};
      await context.meter.settle(300);
      const before = target.pid ? cpuSeconds(target.pid) : null;
      const result = await measuredPull(context, target, image, headers);
      if (!result.ok || result.ms === null) throw new Error(`cold pull of ${result.image} from ${target.name} failed: ${result.error}`);
      const after = target.pid ? cpuSeconds(target.pid) : null;
      const cpuS = before === null || after === null ? null : after - before;
      context.emit({ bench: 'cold-pull-round', target: target.name, image: result.image, round: index, ms: result.ms, cpu_s: round(cpuS, 2) });
      return { ms: result.ms, cpuS, upstream: result.upstream };
    });
    emitColdPulls(context, image, targets, rounds);
  }
}

function emitColdPulls(context: BenchContext, image: PulledImage, targets: Target[], rounds: Map<TargetName, ColdRound[]>): void {
  const direct = rounds.get('direct');
  const reference = rounds.get('reference');
  for (const target of targets) {
    const measured = rounds.get(target.name)!;
    const upstream = sumUpstreamUsage(measured.map((entry) => entry.upstream));
    const cpu = measured.map((entry) => entry.cpuS).filter((value): value is number => value !== null);
    context.emit({
      bench: 'cold-pull',
      target: target.name,
      image: `${image.repo}:${image.tag}`,
      image_bytes: image.totalBytes,
      rounds: measured.length,
      ms: round(median(measured.map((entry) => entry.ms))),
      round_ms: measured.map((entry) => entry.ms),
      vs_direct: target.name === 'direct' ? null : medianRatio(measured, direct, (entry) => entry.ms),
      vs_reference: target.name === 'reference' || target.name === 'direct' ? null : medianRatio(measured, reference, (entry) => entry.ms),
      cpu_s_per_gb: cpu.length ? round(median(cpu)! / (image.totalBytes / 1e9), 2) : null,
      upstream_bytes_vs_image: target.name === 'direct' ? null : ratio(upstream.bytes / measured.length, image.totalBytes),
      upstream,
    });
  }
}

export async function warmPull(context: BenchContext): Promise<void> {
  for (const target of mirrors(context)) {
    context.log(`warm pull: ${target.name}`);
    const { app } = context.env;
    await runLoad<PullResult>({ kind: 'pull', base: target.url, repo: app.repo, tag: app.tag, parallel: 3 }, PULL_DEADLINE_MS);
    await context.meter.settle();
    context.emit({ bench: 'warm-pull', ...(await measuredPull(context, target)) });
  }
}
