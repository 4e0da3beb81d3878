/** A mistake in the command line itself (exit code 2, like a config error). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A command that could not do its work for a reason its message says in full (exit code 1, no stack trace). */
export class CommandFailedError extends Error {
  override name = 'CommandFailedError';
}
