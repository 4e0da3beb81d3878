/** A mistake in the command line itself (exit code 2, like a config error). */
export class UsageError extends Error {
  override name = 'UsageError';
}
