/** The machine a run happened on, and how busy it was when the run started. */
import { cpus, loadavg, totalmem } from 'node:os';
import { spawnSync } from 'node:child_process';

export interface MachineInfo {
  nproc: number;
  cpu: string;
  memory_gib: number;
  node: string;
  load_at_start: number[];
  wrk: string;
  nginx: string | null;
  reference: string | null;
  /** The commit the mirror was built from, and how many files under src/ differed from it. */
  commit: string | null;
  src_files_changed: number | null;
}

export function describeMachine(): MachineInfo {
  return {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memory_gib: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    node: process.version,
    load_at_start: loadavg().map((value) => Math.round(value * 100) / 100),
    wrk: versionOf('wrk', ['--version']) ?? 'missing',
    nginx: versionOf('nginx', ['-v']),
    reference: versionOf('docker-registry', ['--version']),
    ...gitState(),
  };
}

/** First line a program prints about its version (stdout or stderr), or null when it is not installed. */
export function versionOf(command: string, args: string[]): string | null {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  if (result.error) return null;
  return `${result.stdout}${result.stderr}`.trim().split('\n')[0]?.trim() || command;
}

function gitState(): { commit: string | null; src_files_changed: number | null } {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 10_000 });
  const status = spawnSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8', timeout: 10_000 });
  if (head.error || head.status !== 0) return { commit: null, src_files_changed: null };
  return { commit: head.stdout.trim(), src_files_changed: status.status === 0 ? status.stdout.split('\n').filter(Boolean).length : null };
}
