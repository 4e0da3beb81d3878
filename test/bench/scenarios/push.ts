/**
 * Push throughput (issue 14, "Benchmark"): per registry in PUSH_TARGETS (registry:2 today, the
 * mirror's hosted repositories later), in interleaved rounds:
 *   monolithic  a 1 GiB blob: POST, then PUT ?digest= with the whole blob
 *   chunked     the same blob: POST, 16 PATCHes of 64 MiB with Content-Range, then PUT ?digest=
 *   image       a 20-layer image (64 KiB .. ~19 MiB layers, ~72 MiB): HEAD + POST + PUT per blob,
 *               5 uploads at once as dockerd does (max-concurrent-uploads), then the manifest
 * Blob bodies are AES-CTR keystream (incompressible) streamed from files in the page cache, so
 * the client costs little next to the registry's hashing and writing. Each round measures every
 * registry once per kind, back to back; a registry's MB/s is the median over rounds and its ratio
 * the median of per-round ratios against registry:2 (rounds.ts explains why). Every push is
 * checked: 201s, the Range after each PATCH, HEAD of the blob (size), the manifest digest.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchContext } from '../context.js';
import { buildImage, writeRandomBlob, type BenchImage, type BlobFile } from '../bench-images.js';
import { assertStored, pushChunked, pushImage, pushMonolithic } from '../push-client.js';
import { treeRss } from '../process-tree.js';
import { PUSH_TARGETS, REGISTRY2, type PushTarget } from '../push-targets.js';
import { median } from '../rounds.js';
import { MiB, round } from '../stats.js';

const BLOB_BYTES = 1024 * MiB;
const CHUNK_BYTES = 64 * MiB;
const PARALLEL_UPLOADS = 5;
/** 20 layers growing by 1.35x from 64 KiB: 64 KiB .. ~19 MiB, ~72 MiB in all, odd sizes. */
const LAYER_SIZES = Array.from({ length: 20 }, (_, i) => Math.round(64 * 1024 * 1.35 ** i) + 17 * i);

type Kind = 'monolithic' | 'chunked' | 'image';
const KINDS: Kind[] = ['monolithic', 'chunked', 'image'];

interface Measurement {
  seconds: number;
  mbPerS: number;
  rssMaxMb: number;
}

interface Workload {
  blob: BlobFile;
  image: BenchImage;
}

export async function push(context: BenchContext): Promise<void> {
  const kinds = [];
  for (const kind of PUSH_TARGETS) {
    if (kind.available()) kinds.push(kind);
    else context.emit({ bench: 'note', note: `push: ${kind.name} is not installed, skipped` });
  }
  if (kinds.length === 0) return;
  const dir = mkdtempSync(join(tmpdir(), 'registry-mirror-bench-push-'));
  const targets: PushTarget[] = [];
  try {
    context.log('push: generating a 1 GiB blob and a 20-layer image (~72 MiB)');
    const workload = { blob: await writeRandomBlob(join(dir, 'seed'), 'push:1GiB', BLOB_BYTES), image: await buildImage(join(dir, 'seed'), 'bench/layers', 'v1', LAYER_SIZES) };
    for (const kind of kinds) targets.push(await kind.start(join(dir, kind.name.replace(/[^a-z0-9]+/gi, '-'))));
    const results = await measureRounds(context, targets, workload);
    report(context, targets, workload, results);
  } finally {
    for (const target of targets) await target.stop().catch((error: Error) => context.log(`push: stopping ${target.name} failed: ${error.message}`));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** results.get(kind).get(target name): one measurement per round. */
async function measureRounds(context: BenchContext, targets: PushTarget[], workload: Workload): Promise<Map<Kind, Map<string, Measurement[]>>> {
  const results = new Map(KINDS.map((kind) => [kind, new Map(targets.map((target) => [target.name, [] as Measurement[]]))]));
  for (let index = 1; index <= context.options.rounds; index++) {
    // Every other round the other registry goes first, so neither always inherits the disk the
    // other left behind (writeback of its GiB, journal commits).
    const order = index % 2 === 1 ? targets : [...targets].reverse();
    for (const kind of KINDS) {
      for (const target of order) {
        context.log(`push: ${target.name}, ${kind}, round ${index}/${context.options.rounds}`);
        const measured = await measure(target, kind, index, workload);
        results.get(kind)!.get(target.name)!.push(measured);
        context.emit({ bench: 'push-round', registry: target.name, upload: kind, round: index, seconds: round(measured.seconds, 2), mb_per_s: round(measured.mbPerS), rss_max_mb: round(measured.rssMaxMb) });
      }
    }
  }
  return results;
}

async function measure(target: PushTarget, kind: Kind, index: number, { blob, image }: Workload): Promise<Measurement> {
  const agent = new Agent({ keepAlive: true, maxSockets: PARALLEL_UPLOADS });
  const sampler = rssSampler(target.pid);
  const started = performance.now();
  try {
    if (kind === 'monolithic') await pushMonolithic(target.url, 'bench/monolithic', blob, agent);
    else if (kind === 'chunked') await pushChunked(target.url, 'bench/chunked', blob, CHUNK_BYTES, agent);
    else await pushImage(target.url, `bench/image-${index}`, image, PARALLEL_UPLOADS, agent);
    const seconds = (performance.now() - started) / 1000;
    if (kind !== 'image') await assertStored(target.url, `bench/${kind}`, blob, agent);
    const bytes = kind === 'image' ? image.totalBytes : blob.size;
    return { seconds, mbPerS: bytes / MiB / seconds, rssMaxMb: sampler.stop() / MiB };
  } finally {
    sampler.stop();
    agent.destroy();
  }
}

function report(context: BenchContext, targets: PushTarget[], workload: Workload, results: Map<Kind, Map<string, Measurement[]>>): void {
  for (const kind of KINDS) {
    const reference = results.get(kind)!.get(REGISTRY2);
    for (const target of targets) {
      const measured = results.get(kind)!.get(target.name)!;
      const ratios = reference ? measured.map((entry, index) => entry.mbPerS / reference[index]!.mbPerS) : [];
      const summary = {
        bench: 'push',
        registry: target.name,
        upload: kind,
        bytes: kind === 'image' ? workload.image.totalBytes : workload.blob.size,
        ...(kind === 'chunked' ? { chunk_bytes: CHUNK_BYTES } : {}),
        ...(kind === 'image' ? { layers: LAYER_SIZES.length, parallel_uploads: PARALLEL_UPLOADS } : {}),
        rounds: measured.length,
        mb_per_s: round(median(measured.map((entry) => entry.mbPerS))),
        round_mb_per_s: measured.map((entry) => round(entry.mbPerS)),
        seconds: round(median(measured.map((entry) => entry.seconds)), 2),
        vs_registry2: round(median(ratios), 2),
        rss_max_mb: round(Math.max(...measured.map((entry) => entry.rssMaxMb))),
      };
      context.emit(summary);
      context.log(`push: ${target.name} ${kind}: ${summary.mb_per_s} MB/s (median of ${summary.round_mb_per_s.join(', ')}), ${summary.vs_registry2 ?? 'n/a'}x registry:2, RSS max ${summary.rss_max_mb} MB`);
    }
  }
}

/** The highest RSS of the server's process tree (its workers included), sampled every 100 ms while a push runs. */
function rssSampler(pid: number): { stop(): number } {
  let max = 0;
  const sample = () => void (max = Math.max(max, treeRss(pid).now));
  sample();
  const timer = setInterval(sample, 100);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return max;
    },
  };
}
