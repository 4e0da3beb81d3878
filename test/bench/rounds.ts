/**
 * Interleaved rounds: every server measured once per round, in a fixed order, `rounds` times.
 * The background load of a shared machine (steal time included) drifts by tens of percent within
 * a minute; a ratio between two measurements taken seconds apart in the same round is far more
 * stable than one between measurements taken minutes apart, and the median of the rounds
 * discards one disturbed round.
 */
import { percentile, round } from './stats.js';

/** Each server's measurements by its name, in round order. Servers are targets.ts's, or any named ones (scenarios/workers.ts). */
export async function interleavedRounds<S extends { readonly name: string }, T>(servers: S[], rounds: number, measure: (server: S, round: number) => Promise<T>): Promise<Map<S['name'], T[]>> {
  const results = new Map<S['name'], T[]>(servers.map((server) => [server.name, []]));
  for (let index = 1; index <= rounds; index++) {
    for (const server of servers) results.get(server.name)!.push(await measure(server, index));
  }
  return results;
}

export function median(values: number[]): number | null {
  return percentile(values, 50);
}

/** The median over rounds of `pick(ours) / pick(peer)`, both taken in the same round. */
export function medianRatio<T>(ours: T[], peer: T[] | undefined, pick: (entry: T) => number): number | null {
  if (!peer) return null;
  return round(median(ours.map((entry, index) => pick(entry) / pick(peer[index]!))), 2);
}

/** Per-measurement duration: the rounds share the `--duration` budget of one measurement, at least 2 s each. */
export function roundSeconds(durationS: number): number {
  return Math.max(2, Math.ceil(durationS / 2));
}
