/**
 * Cache hits handed to nginx (config `accel.redirectPrefix`): the mirror answers with the blob's
 * headers, `X-Accel-Redirect: <prefix><algorithm>/<xx>/<hex>` and no body, and nginx serves the
 * file from its internal location with sendfile, Range requests included (RFC 9110 §14). The
 * mirror has sendfile of its own (send-file-zero-copy.ts); this mode is for fronts where it
 * cannot apply, such as nginx terminating TLS, or the addon not built.
 *
 * Only behind nginx (deploy/nginx/registry-mirror.conf), and only for requests that nginx marks
 * with ACCEL_REQUEST_HEADER set to the configured prefix: a client reaching the mirror directly
 * gets the bytes from the mirror, never an empty 200, and a prefix that differs between nginx
 * and the mirror disables the mode instead of breaking pulls. A client that forges the header
 * only deprives itself of bytes.
 *
 * The answer itself has no body and says so (`Content-Length: 0`): nginx takes the length from
 * the file it serves, and an honest empty answer lets it keep its upstream connection to the
 * mirror alive (the `keepalive` pool in the nginx config) instead of opening one per blob.
 */
import type { Context } from 'hono';
import { DigestInvalidError } from '../domain/errors.js';

/**
 * How long the blob stays pinned after the answer: nginx opens the file within milliseconds of
 * reading our headers, and once it is open an eviction (unlink) no longer affects it. Until
 * then the pin keeps eviction from deleting the file under nginx's feet.
 */
export const ACCEL_PIN_MS = 10_000;

/** Set by nginx (proxy_set_header) to the internal location it serves blobs from. */
export const ACCEL_REQUEST_HEADER = 'x-registry-mirror-accel-prefix';

/** `pathUnderBlobsDir` comes from a parsed digest; checked again so no request can name another file. */
const SAFE_RELATIVE_PATH = /^[a-z0-9]+\/[a-f0-9]{2}\/[a-f0-9]+$/;

export function accelRedirect(c: Context, prefix: string, pathUnderBlobsDir: string, headers: Record<string, string>, release: () => void): Response {
  if (!SAFE_RELATIVE_PATH.test(pathUnderBlobsDir)) {
    release();
    throw new DigestInvalidError(`no safe X-Accel-Redirect path for ${JSON.stringify(pathUnderBlobsDir)}`);
  }
  setTimeout(release, ACCEL_PIN_MS).unref();
  const accelHeaders = { ...headers, 'Content-Length': '0', 'X-Accel-Redirect': `${prefix}${pathUnderBlobsDir}` };
  return new Response(null, { status: 200, headers: accelHeaders });
}
