/**
 * What a push client sent, condensed from a RecordingProxy log: requests per endpoint (paths
 * with `<name>`, `<digest>`, `<uuid>` in place of the variable parts, and the query keys),
 * statuses, Content-Range usage, body sizes of PATCH and upload PUT requests, chunked transfer
 * encoding, and cross-repository mount attempts. Tests assert on it; with INTEROP_PUSH_REPORT
 * set, the interop test also writes it to that file as markdown.
 */
import type { RecordedRequest } from './recording-proxy.js';

export interface PushSummary {
  client: string;
  /** "METHOD endpoint" -> statuses seen, in order. */
  endpoints: Map<string, number[]>;
  /** Content-Range values sent with PATCH / PUT to an upload (as sent; undefined when absent). */
  contentRanges: Array<{ method: string; contentRange?: string }>;
  /** Body bytes of each PATCH. */
  patchBytes: number[];
  /** Body bytes of each PUT that closed an upload (0: the bytes came in PATCHes). */
  putUploadBytes: number[];
  /** Requests sent with Transfer-Encoding: chunked (no Content-Length), as "METHOD endpoint". */
  chunkedEncoding: string[];
  /** POST ?mount=&from= attempts: from which repository, and the answer. */
  mounts: Array<{ repository: string; from: string; status: number }>;
  /** Content-Type of upload PATCH/PUT bodies and of manifest PUTs. */
  contentTypes: Set<string>;
  userAgents: Set<string>;
}

export function summarizePush(client: string, requests: RecordedRequest[]): PushSummary {
  const summary: PushSummary = { client, endpoints: new Map(), contentRanges: [], patchBytes: [], putUploadBytes: [], chunkedEncoding: [], mounts: [], contentTypes: new Set(), userAgents: new Set() };
  for (const request of requests) {
    const { endpoint, repository, query } = endpointOf(request.url);
    const key = `${request.method} ${endpoint}`;
    summary.endpoints.set(key, [...(summary.endpoints.get(key) ?? []), request.status]);
    summary.userAgents.add(request.userAgent.split(' ')[0] ?? '');
    if (request.transferEncoding?.includes('chunked')) summary.chunkedEncoding.push(key);
    const upload = endpoint.startsWith('/v2/<name>/blobs/uploads/<uuid>');
    if (upload && (request.method === 'PATCH' || request.method === 'PUT')) {
      summary.contentRanges.push({ method: request.method, ...(request.contentRange ? { contentRange: request.contentRange } : {}) });
      (request.method === 'PATCH' ? summary.patchBytes : summary.putUploadBytes).push(request.bodyBytes);
    }
    if ((upload || endpoint.startsWith('/v2/<name>/manifests/')) && request.contentType && request.bodyBytes > 0) summary.contentTypes.add(`${request.method} ${endpoint.split('?')[0]}: ${request.contentType}`);
    if (request.method === 'POST' && query.has('mount')) summary.mounts.push({ repository, from: query.get('from') ?? '(none)', status: request.status });
  }
  return summary;
}

/** `/v2/team/app/blobs/uploads/3f0c...?_state=...&digest=sha256:...` -> `/v2/<name>/blobs/uploads/<uuid>?_state&digest`. */
export function endpointOf(url: string): { endpoint: string; repository: string; query: URLSearchParams } {
  const parsed = new URL(url, 'http://registry.invalid');
  const keys = [...new Set(parsed.searchParams.keys())];
  const suffix = keys.length > 0 ? `?${keys.join('&')}` : '';
  const patterns: Array<[RegExp, (match: RegExpExecArray) => string]> = [
    [/^\/v2\/(.+)\/blobs\/uploads\/$/, () => '/v2/<name>/blobs/uploads/'],
    [/^\/v2\/(.+)\/blobs\/uploads\/[^/]+$/, () => '/v2/<name>/blobs/uploads/<uuid>'],
    [/^\/v2\/(.+)\/blobs\/[^/]+$/, () => '/v2/<name>/blobs/<digest>'],
    [/^\/v2\/(.+)\/manifests\/([^/]+)$/, (match) => `/v2/<name>/manifests/${match[2]!.includes(':') ? '<digest>' : '<tag>'}`],
    [/^\/v2\/(.+)\/referrers\/[^/]+$/, () => '/v2/<name>/referrers/<digest>'],
    [/^\/v2\/(.+)\/tags\/list$/, () => '/v2/<name>/tags/list'],
  ];
  for (const [pattern, name] of patterns) {
    const match = pattern.exec(parsed.pathname);
    if (match) return { endpoint: `${name(match)}${suffix}`, repository: match[1]!, query: parsed.searchParams };
  }
  return { endpoint: `${parsed.pathname}${suffix}`, repository: '', query: parsed.searchParams };
}

export function pushSummaryMarkdown(summary: PushSummary): string {
  const lines = [`### ${summary.client}`, '', `User-Agent: ${[...summary.userAgents].join(', ')}`, '', '| request | statuses |', '| --- | --- |'];
  for (const [endpoint, statuses] of summary.endpoints) lines.push(`| ${endpoint} | ${countStatuses(statuses)} |`);
  const ranges = summary.contentRanges.map((entry) => `${entry.method} ${entry.contentRange ?? '(none)'}`);
  lines.push(
    '',
    `- Content-Range on upload PATCH/PUT: ${ranges.length ? [...new Set(ranges)].slice(0, 12).join('; ') : 'no upload PATCH/PUT'}`,
    `- PATCH body sizes: ${sizes(summary.patchBytes)}`,
    `- closing PUT body sizes: ${sizes(summary.putUploadBytes)}`,
    `- Transfer-Encoding chunked: ${summary.chunkedEncoding.length ? countStrings(summary.chunkedEncoding) : 'never'}`,
    `- mount attempts: ${summary.mounts.length ? summary.mounts.map((mount) => `${mount.from} -> ${mount.repository}: ${mount.status}`).join('; ') : 'none'}`,
    `- Content-Types: ${[...summary.contentTypes].join('; ') || 'none'}`,
    '',
  );
  return lines.join('\n');
}

function countStatuses(statuses: number[]): string {
  return countStrings(statuses.map(String));
}

function countStrings(values: string[]): string {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return [...counts].map(([value, count]) => (count > 1 ? `${value} x${count}` : value)).join(', ');
}

function sizes(values: number[]): string {
  if (values.length === 0) return 'none';
  return `${values.length} requests, ${Math.min(...values)}..${Math.max(...values)} bytes (${values.slice(0, 8).join(', ')}${values.length > 8 ? ', ...' : ''})`;
}
