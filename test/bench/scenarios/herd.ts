/**
 * Herd (issue 3): N clients, each on its own connection (opened beforehand), GET the same
 * uncached ~120 MiB blob at the same instant and verify its sha256. Reports wall time,
 * per-client times and time to first body byte, failures, and how many GETs of that blob reached
 * hub and its CDN. Fetching once gives 1 CDN GET; the reference is known to give N+1.
 */
import { runLoad, type HerdOutcome } from '../load.js';
import { mirrors, type BenchContext } from '../context.js';
import { MiB, round, spread } from '../stats.js';

const HERD_DEADLINE_MS = 600_000;

export async function herd(context: BenchContext): Promise<void> {
  const { app } = context.env;
  const blob = app.layers[0]!;
  for (const target of mirrors(context)) {
    for (const clients of context.options.clients) {
      context.log(`herd: ${target.name}, ${clients} clients`);
      await target.reset();
      const mark = context.meter.mark();
      const outcome = await runLoad<HerdOutcome>({ kind: 'herd', base: target.url, repo: app.repo, digest: blob.digest, size: blob.size, clients, verify: true }, HERD_DEADLINE_MS);
      await context.meter.settle(1_500, 180_000);
      const gets = context.meter.blobGets(mark, blob.digest);
      const upstream = context.meter.since(mark);
      context.emit({
        bench: 'herd',
        target: target.name,
        clients,
        blob_bytes: blob.size,
        ok_clients: outcome.clientMs.length,
        failures: outcome.failures,
        wall_ms: Math.round(outcome.wallMs),
        client_ms: spread(outcome.clientMs),
        ttfb_ms: spread(outcome.ttfbMs),
        aggregate_mb_per_s: round((outcome.clientMs.length * blob.size) / MiB / (outcome.wallMs / 1000)),
        upstream_blob_gets: { hub: gets.hub, cdn: gets.cdn, hub_heads: gets.hubHeads, hub_401: gets.hubChallenges },
        upstream_bytes: upstream.bytes,
        upstream_bytes_vs_blob: round(upstream.bytes / blob.size, 2),
        upstream,
      });
    }
  }
}
