/**
 * Memory (issues 3 and 8): the mirror's RSS, sampled from /proc/<pid>/status (VmRSS) every
 * 100 ms, and its PSS (/proc/<pid>/smaps_rollup), while 50 clients stream a 1 GiB blob, first
 * cold (one upstream fetch fanned out to all) then warm (from the cache). With `serve`'s workers
 * the summed VmRSS counts the pages the processes share (node's code, mapped from one binary)
 * once per process, the summed PSS once in all. Clients check the byte count but skip hashing:
 * 50 GiB of sha256 on a 2-core machine would measure the client, and correctness is already
 * covered by the herd.
 */
import { runLoad, type HerdOutcome } from '../load.js';
import type { BenchContext } from '../context.js';
import { processTree, treePss, treeRss } from '../process-tree.js';
import { round, spread, MiB } from '../stats.js';
import type { Target } from '../targets.js';

const CLIENTS = 50;
const DEADLINE_MS = 420_000;

export async function memory(context: BenchContext): Promise<void> {
  const mirror = context.targets.get('mirror');
  const huge = context.env.huge;
  if (!mirror || !huge) return;
  const blob = huge.layers[0]!;
  await mirror.reset();
  for (const phase of ['cold', 'warm'] as const) {
    context.log(`memory: mirror, ${CLIENTS} clients, 1 GiB blob, ${phase}`);
    const mark = context.meter.mark();
    const rssStart = rssBytes(mirror);
    let rssMax = rssStart;
    const pssStart = treePss(mirror.pid);
    let pssMax = pssStart;
    const sample = () => {
      rssMax = Math.max(rssMax, rssBytes(mirror));
      pssMax = Math.max(pssMax, treePss(mirror.pid));
    };
    const outcome = await runLoad<HerdOutcome>({ kind: 'herd', base: mirror.url, repo: huge.repo, digest: blob.digest, size: blob.size, clients: CLIENTS, verify: false }, DEADLINE_MS, sample);
    await context.meter.settle(1_000, 120_000);
    const gets = context.meter.blobGets(mark, blob.digest);
    context.emit({
      bench: 'memory',
      target: 'mirror',
      phase,
      clients: CLIENTS,
      blob_bytes: blob.size,
      ok_clients: outcome.clientMs.length,
      failures: outcome.failures,
      wall_ms: Math.round(outcome.wallMs),
      client_ms: spread(outcome.clientMs),
      rss_start_mb: round(rssStart / MiB),
      rss_max_mb: round(rssMax / MiB),
      processes: processTree(mirror.pid).length,
      pss_start_mb: round(pssStart / MiB),
      pss_max_mb: round(pssMax / MiB),
      upstream_blob_gets: { hub: gets.hub, cdn: gets.cdn },
    });
  }
}

/** The server's RSS: its process and, with `serve --workers` (one per core by default), its workers. */
function rssBytes(target: Target): number {
  return treeRss(target.pid).now;
}
