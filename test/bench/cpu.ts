/**
 * CPU time a server has used, from /proc/<pid>/stat (proc(5): utime and stime, fields 14 and 15,
 * in clock ticks, summed over all the process's threads: libuv's pool and Go's threads included),
 * added up over the process and its descendants (`serve` runs a worker per core by default).
 * Read before and after a measurement; the difference is what that work cost.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { processTree } from './process-tree.js';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return ticksPerSecond;
}

/** User plus system CPU seconds of `pid` and its descendants so far; null where /proc is not there (not Linux). */
export function cpuSeconds(pid: number): number | null {
  if (processCpuSeconds(pid) === null) return null;
  return processTree(pid).reduce((total, member) => total + (processCpuSeconds(member) ?? 0), 0);
}

function processCpuSeconds(pid: number): number | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / clockTicks() : null;
}
