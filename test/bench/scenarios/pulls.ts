/**
 * Cold pull: reset the server, then pull myorg/app:v1 like a container client (tag -> manifest ->
 * config + layers, 3 downloads at once, every digest verified). Reports time, MB/s, and what the
 * upstream saw: requests by kind and bytes, against the image's own size (a mirror that fetches
 * each byte once reaches 1.0x).
 * Warm pull: after a priming pull, a second client pulls the same image; a perfect cache causes
 * no upstream request at all within the tag TTL.
 */
import { runLoad } from '../load.js';
import { mirrors, type BenchContext } from '../context.js';
import { mbPerSecond, ratio } from '../stats.js';
import type { PullResult } from '../registry-client.js';
import type { Target } from '../targets.js';

const PULL_DEADLINE_MS = 300_000;

async function measuredPull(context: BenchContext, target: Target) {
  const { app } = context.env;
  const mark = context.meter.mark();
  let result: PullResult | undefined;
  let error: string | undefined;
  try {
    result = await runLoad<PullResult>({ kind: 'pull', base: target.url, repo: app.repo, tag: app.tag, parallel: 3 }, PULL_DEADLINE_MS);
  } catch (failure) {
    error = (failure as Error).message;
  }
  await context.meter.settle();
  const upstream = context.meter.since(mark);
  return {
    target: target.name,
    image: `${app.repo}:${app.tag}`,
    ok: !error,
    ...(error ? { error } : {}),
    ms: result ? Math.round(result.ms) : null,
    mb_per_s: result ? mbPerSecond(result.bytes, result.ms) : null,
    image_bytes: app.totalBytes,
    upstream,
  };
}

export async function coldPull(context: BenchContext): Promise<void> {
  for (const target of mirrors(context)) {
    context.log(`cold pull: ${target.name}`);
    await target.reset();
    const result = await measuredPull(context, target);
    context.emit({ bench: 'cold-pull', ...result, upstream_bytes_vs_image: ratio(result.upstream.bytes, result.image_bytes) });
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
