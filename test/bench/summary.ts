/**
 * The closing table: issue 8's target ratios and issue 3's herd counts, computed from the result
 * lines of this run (so every ratio compares servers measured side by side).
 */
import type { BenchResult } from './context.js';
import { ratio } from './stats.js';

interface Row {
  what: string;
  mirror: string;
  /** The mirror in accel mode behind deploy/nginx's nginx; '-' where the front changes nothing. */
  mirrorNginx: string;
  reference: string;
  target: string;
}

type Finder = (bench: string, target: string, extra?: Record<string, unknown>) => BenchResult | undefined;

export function summaryRows(results: BenchResult[]): Row[] {
  const find: Finder = (bench, target, extra = {}) =>
    results.find((result) => result.bench === bench && result.target === target && Object.entries(extra).every(([key, value]) => result[key] === value));
  const num = (result: BenchResult | undefined, key: string): number | null => {
    const value = key.split('.').reduce<unknown>((object, part) => (object as Record<string, unknown> | undefined)?.[part], result);
    return typeof value === 'number' ? value : null;
  };
  const rows = [...blobRows(find, num), ...tagRows(find, num), ...coldRows(find, num), ...memoryRows(find, num), ...herdRows(results, find), ...authRows(find, num), ...replicaRows(find, num), ...workerRows(find, num)];
  // A scenario left out with --only leaves nothing to compare: drop its rows.
  return rows.filter((row) => !/^n\/a/.test(row.mirror) || !/^n\/a|^-$/.test(row.reference));
}

type Num = (result: BenchResult | undefined, key: string) => number | null;

const ms = (value: number | null) => (value === null ? 'n/a' : `${value} ms`);
const times = (value: number | null) => (value === null ? 'n/a' : `${value.toFixed(2)}x`);
const withRaw = (value: number | null, raw: number | null, unit: string) => (value === null ? 'n/a' : `${value.toFixed(2)}x (${raw} ${unit})`);

function blobRows(find: Finder, num: Num): Row[] {
  const rows: Array<[string, string, string, string]> = [
    ['30MiB', 'mb_per_s', 'MB/s', '>= 0.8x'],
    ['3MiB', 'req_per_s', 'req/s', '>= 0.6x'],
  ];
  return rows.flatMap(([blob, key, unit, target]) => {
    const ceiling = num(find('blob-throughput', 'nginx', { blob }), key);
    const cell = (name: string) => {
      const result = find('blob-throughput', name, { blob });
      const value = num(result, key);
      // The median of per-round ratios (scenarios/throughput.ts) when the run had rounds.
      return withRaw(num(result, `vs_nginx.${key}`) ?? ratio(value, ceiling), value, unit);
    };
    return [
      { what: `warm ${blob} blob, ${unit} vs nginx sendfile (median ${ceiling ?? 'n/a'} ${unit})`, mirror: cell('mirror'), mirrorNginx: cell('mirror+nginx'), reference: cell('reference'), target },
      // In the mirror's column: the most a server built on Node's HTTP module got on this machine.
      { what: `  same, Node's http + the mirror's sendfile, no registry`, mirror: cell('node-sendfile'), mirrorNginx: '-', reference: '-', target: 'ceiling in Node' },
    ];
  });
}

function tagRows(find: Finder, num: Num): Row[] {
  const ours = find('tag-resolution', 'mirror');
  const fronted = find('tag-resolution', 'mirror+nginx');
  const reference = find('tag-resolution', 'reference');
  const referenceRate = num(reference, 'req_per_s');
  const rate = (result: BenchResult | undefined) => withRaw(num(result, 'vs_reference') ?? ratio(num(result, 'req_per_s'), referenceRate, 1), num(result, 'req_per_s'), 'req/s');
  const upstream = (result: BenchResult | undefined) => String(num(result, 'upstream_per_request') ?? 'n/a');
  return [
    {
      what: 'warm tag resolution, req/s vs reference (16 conns)',
      mirror: rate(ours),
      mirrorNginx: rate(fronted),
      reference: referenceRate === null ? 'n/a' : `1x (${referenceRate} req/s)`,
      target: '>= 20x',
    },
    { what: 'warm tag resolution, p99 latency', mirror: ms(num(ours, 'latency_ms.p99')), mirrorNginx: ms(num(fronted, 'latency_ms.p99')), reference: ms(num(reference, 'latency_ms.p99')), target: '< 20 ms' },
    { what: 'warm tag resolution, upstream requests per request', mirror: upstream(ours), mirrorNginx: upstream(fronted), reference: upstream(reference), target: '0' },
  ];
}

const APP_IMAGE = 'myorg/app:v1';
const LAYERED_IMAGE = 'library/busybox:latest';

function coldRows(find: Finder, num: Num): Row[] {
  const cell = (name: string) => times(num(find('cold-pull', name, { image: APP_IMAGE }), 'upstream_bytes_vs_image'));
  return [
    ...coldBlobRows(find, num),
    ...[[APP_IMAGE, '<= 1.3x'], [LAYERED_IMAGE, '<= 2x']].map(([image, target]) => {
      const pull = (name: string) => withRaw(num(find('cold-pull', name, { image }), 'vs_direct'), num(find('cold-pull', name, { image }), 'ms'), 'ms');
      const direct = num(find('cold-pull', 'direct', { image }), 'ms');
      return { what: `cold pull of ${image} vs a direct pull (median ${direct ?? 'n/a'} ms)`, mirror: pull('mirror'), mirrorNginx: '-', reference: pull('reference'), target: target! };
    }),
    { what: 'upstream bytes of a cold pull vs image size', mirror: cell('mirror'), mirrorNginx: '-', reference: cell('reference'), target: '1.0x' },
  ];
}

/** scenarios/cold-blob.ts: ratios are medians of per-round ratios against the reference. */
function coldBlobRows(find: Finder, num: Num): Row[] {
  return [...coldBlobRowsOf('cold-blob', 'cold ~120 MiB blob', find, num), ...coldBlobRowsOf('cold-registry', 'cold ~120 MiB blob from registry:2', find, num)];
}

/** scenarios/cold-blob.ts and cold-registry.ts report the same fields. */
function coldBlobRowsOf(bench: string, what: string, find: Finder, num: Num): Row[] {
  const mirror = find(bench, 'mirror');
  const reference = find(bench, 'reference');
  if (!mirror && !reference) return [];
  const raw = (result: BenchResult | undefined, key: string, unit: string) => `${num(result, key) ?? 'n/a'} ${unit}`;
  return [
    { what: `${what}, MB/s vs reference`, mirror: withRaw(num(mirror, 'vs_reference.mb_per_s'), num(mirror, 'mb_per_s'), 'MB/s'), mirrorNginx: '-', reference: raw(reference, 'mb_per_s', 'MB/s'), target: '>= 1.2x' },
    { what: `${what}, first byte vs reference`, mirror: withRaw(num(mirror, 'vs_reference.ttfb'), num(mirror, 'ttfb_ms'), 'ms'), mirrorNginx: '-', reference: raw(reference, 'ttfb_ms', 'ms'), target: '<= 1x' },
    { what: `${what}, CPU seconds per GB served`, mirror: withRaw(num(mirror, 'vs_reference.cpu_s_per_gb'), num(mirror, 'cpu_s_per_gb'), 's/GB'), mirrorNginx: '-', reference: raw(reference, 'cpu_s_per_gb', 's/GB'), target: '<= 1x' },
  ];
}

function memoryRows(find: Finder, num: Num): Row[] {
  const mb = (phase: string, field = 'rss_max_mb') => num(find('memory', 'mirror', { phase }), field);
  if (mb('cold') === null && mb('warm') === null) return [];
  const cell = (field: string) => `${mb('cold', field) ?? 'n/a'} / ${mb('warm', field) ?? 'n/a'} MB`;
  return [
    { what: 'RSS max, 50 clients stream a 1 GiB blob (cold / warm), summed over processes', mirror: cell('rss_max_mb'), mirrorNginx: '-', reference: '-', target: '< 150 MB' },
    { what: 'same, PSS: pages shared by the processes (node itself) counted once', mirror: cell('pss_max_mb'), mirrorNginx: '-', reference: '-', target: '< 150 MB' },
  ];
}

function authRows(find: Finder, num: Num): Row[] {
  const result = find('auth-flood', 'mirror');
  if (!result) return [];
  const cell = `${times(num(result, 'attack_vs_idle'))} (p50 ${ms(num(result, 'attack_pull_ms.p50'))} vs ${ms(num(result, 'idle_pull_ms.p50'))} idle)`;
  return [{ what: `authenticated pull under ${result.attackers} wrong-password clients vs idle`, mirror: cell, mirrorNginx: '-', reference: '-', target: '<= 2x' }];
}

function herdRows(results: BenchResult[], find: Finder): Row[] {
  const counts = [...new Set(results.filter((result) => result.bench === 'herd').map((result) => result.clients as number))];
  return counts.map((clients) => {
    const cell = (name: string) => {
      const result = find('herd', name, { clients });
      if (!result) return 'n/a';
      const gets = result.upstream_blob_gets as { hub: number; cdn: number };
      const failed = (result.failures as string[]).length;
      return `${gets.cdn} CDN / ${gets.hub} hub GETs, p50 ${(result.ttfb_ms as { p50: number }).p50} ms TTFB${failed ? `, ${failed} failed` : ''}`;
    };
    return { what: `herd: ${clients} clients, cold ~120 MiB blob, upstream GETs`, mirror: cell('mirror'), mirrorNginx: '-', reference: cell('reference'), target: '1 CDN GET' };
  });
}

/** Issue 15: three replicas on one bucket and one Redis, 60 clients on a cold ~120 MiB blob. */
function replicaRows(find: Finder, num: Num): Row[] {
  const ours = find('replicas', 'mirror');
  const reference = find('replicas', 'reference');
  if (!ours && !reference) return [];
  const gets = (result: BenchResult | undefined) => {
    const counted = result?.upstream_blob_gets as { hub: number; cdn: number } | undefined;
    const failed = (result?.failures as string[] | undefined)?.length ?? 0;
    return counted ? `${counted.cdn} CDN / ${counted.hub} hub GETs${failed ? `, ${failed} failed` : ''}` : 'n/a';
  };
  return [
    { what: 'replicas: 3 x 20 clients, cold ~120 MiB blob, upstream GETs (fleet)', mirror: gets(ours), mirrorNginx: '-', reference: gets(reference), target: '1 CDN GET' },
    { what: 'replicas: first byte on replicas not owning the download (p50 / max)', mirror: `${ms(num(ours, 'non_owner_ttfb_ms.p50'))} / ${ms(num(ours, 'non_owner_ttfb_ms.max'))}`, mirrorNginx: '-', reference: `${ms(num(reference, 'ttfb_ms.p50'))} / ${ms(num(reference, 'ttfb_ms.max'))} (all)`, target: '< 2000 ms' },
  ];
}

/** Issue 15 item 9: `serve --workers 2` against `--workers 1`, and its herd. */
function workerRows(find: Finder, num: Num): Row[] {
  const warm = find('workers-throughput', 'mirror');
  const herd = find('workers-herd', 'mirror');
  const rows: Row[] = [];
  if (warm) rows.push({ what: `warm 3 MiB blob req/s, --workers 2 vs --workers 1 (${num(warm, 'workers_2_req_per_s')} vs ${num(warm, 'workers_1_req_per_s')})`, mirror: times(num(warm, 'ratio')), mirrorNginx: '-', reference: '-', target: '>= 1.3x' });
  if (herd) {
    const gets = herd.upstream_blob_gets as { hub: number; cdn: number };
    rows.push({ what: '--workers 2: 50-client herd, cold ~120 MiB blob, upstream GETs', mirror: `${gets.cdn} CDN / ${gets.hub} hub GETs, p50 ${ms(num(herd, 'ttfb_ms.p50'))} TTFB`, mirrorNginx: '-', reference: '-', target: '1 CDN GET' });
  }
  return rows;
}

export function formatTable(rows: Row[]): string {
  const header: Row = { what: 'what', mirror: 'mirror', mirrorNginx: 'mirror+nginx (accel)', reference: 'reference', target: 'target' };
  const keys = ['what', 'mirror', 'mirrorNginx', 'reference', 'target'] as const;
  const widths = keys.map((key) => Math.max(...[header, ...rows].map((row) => row[key].length)));
  const line = (row: Row) => `| ${keys.map((key, i) => row[key].padEnd(widths[i]!)).join(' | ')} |`;
  return [line(header), `| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

