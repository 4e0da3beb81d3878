/**
 * Reading what the mirror under test wrote (support/mirror.ts copies its stdout and stderr into
 * `process.logFile`), and its Prometheus text.
 */
import { readFileSync } from 'node:fs';
import type { RunningMirror } from './mirror.js';

const LOG_DEADLINE_MS = 15_000;

/** Sends a request to the mirror (with whatever TLS trust and credentials it needs) and reads the answer. */
export type SendSentinel = (url: string) => Promise<unknown>;

export function logLines(mirror: RunningMirror): string[] {
  return readFileSync(mirror.process.logFile, 'utf8').split('\n').filter((line) => line !== '');
}

let sentinels = 0;

/**
 * Output reaches the log file asynchronously, so the log is read up to a sentinel request's own
 * line: every request answered before the sentinel is in the file by then.
 * Returns the entries before the sentinel's line and that line's index.
 */
async function logUpToSentinel(mirror: RunningMirror, send: SendSentinel): Promise<{ entries: LogEntry[]; sentinelIndex: number }> {
  const sentinel = `/v2/interop-sentinel-${++sentinels}/tags/list`;
  await send(`${mirror.url}${sentinel}`);
  const deadline = Date.now() + LOG_DEADLINE_MS;
  for (;;) {
    const entries = logLines(mirror).map((line) => JSON.parse(line) as LogEntry);
    const sentinelIndex = entries.findIndex((entry) => entry.path === sentinel);
    if (sentinelIndex >= 0) return { entries: entries.slice(0, sentinelIndex), sentinelIndex };
    if (Date.now() > deadline) throw new Error(`the mirror did not log ${sentinel} within ${LOG_DEADLINE_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface LogEntry {
  msg?: string;
  method?: string;
  path?: string;
  status?: number;
}

/** A position in the mirror's log after every request answered so far. */
export async function logMark(mirror: RunningMirror, send: SendSentinel): Promise<number> {
  return (await logUpToSentinel(mirror, send)).sentinelIndex + 1;
}

/** "METHOD path status" of the requests the mirror answered since `mark`. */
export async function requestsSince(mirror: RunningMirror, mark: number, send: SendSentinel): Promise<string[]> {
  const { entries } = await logUpToSentinel(mirror, send);
  return entries.slice(mark).filter((entry) => entry.msg === 'request').map((entry) => `${entry.method} ${entry.path} ${entry.status}`);
}

/** Sum of the samples of one metric family, e.g. all `registry_mirror_cache_hits_total{...}` lines. */
export function metricSum(text: string, name: string): number {
  return text.split('\n').filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `)).reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
