/** What every scenario gets: the upstreams, their meter, the running targets and the options. */
import type { BenchUpstreams } from './bench-upstreams.js';
import type { Target, TargetName } from './targets.js';
import type { UpstreamMeter } from './upstream-meter.js';

export interface BenchOptions {
  only: Set<ScenarioName>;
  durationS: number;
  /** Throughput: seconds of unmeasured load on each server and blob before its rounds (steady state, not a cold JIT). */
  warmupS: number;
  /** Throughput, cold pulls, cold blob: rounds, each running every server once (rounds.ts). */
  rounds: number;
  clients: number[];
  jsonFile?: string;
  /** Scale scenario: tags and repositories to import; another build to measure the same way; its import's cut-off. */
  scaleTags: number;
  scaleRepositories: number;
  scaleOldMain?: string;
  scaleImportTimeoutS: number;
}

export const SCENARIOS = ['cold', 'cold-blob', 'cold-registry', 'warm', 'herd', 'throughput', 'tags', 'memory', 'push', 'auth', 'replicas', 'workers', 'scale'] as const;
/** Scenarios that start what they measure themselves and need none of the shared upstreams and targets. */
export const STANDALONE_SCENARIOS: readonly ScenarioName[] = ['scale'];
export type ScenarioName = (typeof SCENARIOS)[number];

/** One result line; `bench` names the scenario, `target` the server measured. */
export type BenchResult = { bench: string; target?: TargetName } & Record<string, unknown>;

export interface BenchContext {
  readonly env: BenchUpstreams;
  readonly meter: UpstreamMeter;
  readonly targets: ReadonlyMap<TargetName, Target>;
  readonly options: BenchOptions;
  /** The run's temporary directory: a scenario that starts servers of its own keeps their state under it. */
  readonly workDir: string;
  /** Prints the result as one JSON line (and appends it to --json). */
  emit(result: BenchResult): void;
  /** Progress for humans, on stderr. */
  log(line: string): void;
}

/**
 * The pull-through servers (not the nginx ceiling), in a fixed order. `withFront` adds the
 * mirror behind nginx, for scenarios where the front makes a difference (warm answers).
 */
export function mirrors(context: BenchContext, { withFront = false } = {}): Target[] {
  const names: TargetName[] = withFront ? ['mirror', 'mirror+nginx', 'reference'] : ['mirror', 'reference'];
  return names.flatMap((name) => context.targets.get(name) ?? []);
}
