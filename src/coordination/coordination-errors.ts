/**
 * Errors of cross-process coordination. Coordination through Redis is an optimisation (issue 15:
 * "the lease is an optimisation: correctness comes from content addressing"), so an unreachable
 * Redis is an error callers catch and answer by coordinating within their own process; it
 * reaches a client only as UNAVAILABLE (503) if a caller chooses to let it through.
 */
import { MirrorError } from '../domain/errors.js';

/** Redis could not be reached, refused the command, or did not answer within commandTimeoutMs. */
export class CoordinationUnavailableError extends MirrorError {
  readonly code = 'UNAVAILABLE';
}

/**
 * This process already has `maxQueued` fetches waiting for a slot of one upstream: the fleet is
 * saturated, and a longer queue would only hold requests until their clients give up. A 503, not
 * a 4xx, so clients retry (the upstream side is at fault, not the request).
 */
export class UpstreamQueueFullError extends MirrorError {
  readonly code = 'UNAVAILABLE';
}

/** A coordination option out of range: names the option and the value received. */
export class CoordinationOptionError extends TypeError {
  readonly code = 'COORDINATION_OPTION_INVALID';
  constructor(readonly option: string, readonly expected: string, readonly received: unknown) {
    super(`expected ${option} to be ${expected}, got ${typeof received === 'string' ? JSON.stringify(received) : String(received)}`);
    this.name = 'CoordinationOptionError';
  }
}

export function assertIntegerOption(option: string, value: unknown, minimum: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw new CoordinationOptionError(option, `an integer of at least ${minimum}`, value);
  }
}

export function assertTextOption(option: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value === '') throw new CoordinationOptionError(option, 'a non-empty string', value);
}
