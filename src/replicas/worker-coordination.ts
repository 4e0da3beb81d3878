/**
 * Coordination among the workers of `serve --workers N` (cli/serve-workers.ts) without Redis.
 */
import type { MirrorConfig } from '../config/mirror-config.js';
import type { FleetParts } from './fleet.js';

export function workerCoordination(_config: MirrorConfig, _env: NodeJS.ProcessEnv): FleetParts | undefined {
  return undefined;
}
