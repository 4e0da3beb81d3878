/**
 * A server's processes as /proc shows them: `serve` runs a worker per core by default (issue 15
 * item 9), so what a server uses is its own process plus its workers.
 */
import { readFileSync } from 'node:fs';

/** `pid` and its descendants (Linux; just `pid` elsewhere). */
export function processTree(pid: number): number[] {
  return [pid, ...childrenOf(pid).flatMap(processTree)];
}

export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** A `kB` field of /proc/<pid>/status (VmRSS, VmHWM) in bytes; 0 when the process is gone. */
export function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Proportional set size (`Pss` of /proc/<pid>/smaps_rollup) in bytes; 0 when the process is gone.
 * A page shared by n processes counts 1/n in each: summed over a tree it is the memory the tree
 * holds, each physical page once. Summed VmRSS counts node's own code (about 42 MB resident,
 * mapped from the one binary) once per process.
 */
export function pssBytes(pid: number): number {
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return match?.[1] ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** PSS of the whole tree now: what its processes hold together, shared pages counted once. */
export function treePss(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + pssBytes(p), 0);
}

/** RSS of the whole tree, now and the sum of each process's peak. */
export function treeRss(pid: number): { now: number; peak: number } {
  const pids = processTree(pid);
  return { now: pids.reduce((sum, p) => sum + statusBytes(p, 'VmRSS'), 0), peak: pids.reduce((sum, p) => sum + statusBytes(p, 'VmHWM'), 0) };
}
