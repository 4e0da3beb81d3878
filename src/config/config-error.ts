/** A configuration the mirror cannot run with; the message names the key to change. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
