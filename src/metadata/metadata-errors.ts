/**
 * Errors of the metadata backends. A backend that cannot be reached is UNAVAILABLE (503 through
 * http/oci-error-response.ts): the client may retry, and a mirror keeps serving what it can.
 * A bad option is a programming or configuration mistake and names the option it is about.
 */
import { MirrorError } from '../domain/errors.js';

export class MetadataUnavailableError extends MirrorError {
  readonly code = 'UNAVAILABLE';
}

export class MetadataOptionError extends TypeError {
  readonly code = 'METADATA_OPTION_INVALID';
  constructor(readonly option: string, readonly expected: string, readonly received: unknown) {
    super(`expected ${option} to be ${expected}, got ${describe(received)}`);
    this.name = 'MetadataOptionError';
  }

  /** The same complaint about the config key the option came from. */
  renamed(option: string): MetadataOptionError {
    return new MetadataOptionError(option, this.expected, this.received);
  }
}

/** A database written by a newer release: refusing beats corrupting it. */
export class MetadataSchemaError extends Error {
  readonly code = 'METADATA_SCHEMA_TOO_NEW';
  constructor(filename: string, found: number, supported: number) {
    super(`${filename} has schema version ${found}, newer than this release supports (${supported}); upgrade registry-mirror or point cache.dir elsewhere`);
    this.name = 'MetadataSchemaError';
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined || value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value;
}

export function assertInteger(option: string, value: unknown, minimum: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    throw new MetadataOptionError(option, minimum === 0 ? 'a non-negative integer' : `an integer of at least ${minimum}`, value);
  }
}
