/**
 * Loads one of the optional native addons that `npm ci` builds into dist/native
 * (src/native/build-native.mjs): the module, or why it is not there, for the start-up log.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export type NativeAddon<T> = { addon: T } | { addon?: undefined; reason: string };

/** `name` is the file's name without `.node`. The addons are Linux-only. */
export function loadNativeAddon<T>(name: string): NativeAddon<T> {
  if (process.platform !== 'linux') return { reason: `not Linux (${process.platform})` };
  // Same relative path from src/http (tests) and dist/http (the package).
  const file = fileURLToPath(new URL(`../../dist/native/${name}.node`, import.meta.url));
  try {
    return { addon: createRequire(import.meta.url)(file) as T };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { reason: code === 'MODULE_NOT_FOUND' ? 'not built (npm run build:native needs a C compiler and Node headers)' : `failed to load: ${(error as Error).message}` };
  }
}
