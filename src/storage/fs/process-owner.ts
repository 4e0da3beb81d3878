/**
 * Who owns a temp directory: a process id and that process's start time, so a directory left by
 * a crashed process is told apart from one a live process is writing into, even once the pid is
 * reused by another program (issue 12 item 5: a second `serve` on the same cache used to empty
 * `tmp/` at start and kill the first one's downloads).
 *
 * The start time is field 22 of /proc/<pid>/stat (clock ticks since boot, proc(5)). Without
 * /proc (not Linux), liveness falls back to signal 0 and the start time is not compared. A zombie
 * (state Z or X: it has exited, its parent has not reaped it yet) owns nothing: the workers of a
 * `serve --workers` killed together stay zombies until init reaps them, which may take a while.
 */
import { readFileSync } from 'node:fs';

export interface ProcessOwner {
  pid: number;
  /** undefined where /proc is not available. */
  startTime: string | undefined;
}

/** `<pid>-<start time>`: the name of a process's own temp directory. */
export function ownerName(owner: ProcessOwner): string {
  return `${owner.pid}-${owner.startTime ?? 'x'}`;
}

export function parseOwnerName(name: string): ProcessOwner | undefined {
  const match = /^([0-9]+)-([0-9]+|x)$/.exec(name);
  if (!match) return undefined;
  return { pid: Number(match[1]), startTime: match[2] === 'x' ? undefined : match[2] };
}

export function currentProcess(): ProcessOwner {
  return { pid: process.pid, startTime: startTimeOf(process.pid) };
}

/** True while the process that made `owner` runs; a reused pid with another start time does not count. */
export function isAlive(owner: ProcessOwner): boolean {
  if (owner.pid === process.pid) return owner.startTime === startTimeOf(process.pid);
  const stat = statOf(owner.pid);
  if (stat !== undefined) return !EXITED.has(stat.state) && (owner.startTime === undefined || stat.startTime === owner.startTime);
  if (procAvailable()) return false;
  return signalZero(owner.pid);
}

const EXITED = new Set(['Z', 'X', 'x']);

function startTimeOf(pid: number): string | undefined {
  return statOf(pid)?.startTime;
}

function statOf(pid: number): { state: string; startTime: string | undefined } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '', startTime: fields[19] };
  } catch {
    return undefined;
  }
}

let procChecked: boolean | undefined;

function procAvailable(): boolean {
  procChecked ??= startTimeOf(process.pid) !== undefined;
  return procChecked;
}

function signalZero(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
