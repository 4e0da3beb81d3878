/**
 * Registry host names as they appear in `?ns=` (containerd hosts.toml) and in path prefixes
 * (podman registries.conf). They are compared against configured upstream names only, never
 * turned into URLs, so a request can never make the mirror dial a host of its choosing.
 */
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
/** Case-insensitive as a whole: `LOCALHOST:5000` is as much a host name as `Gcr.io`. */
const HOST_PATTERN = new RegExp(`^(?:localhost|${LABEL}(?:\\.${LABEL})+)(?::[0-9]{1,5})?$`, 'i');

export function isRegistryHost(text: string): boolean {
  return text.length <= 253 && HOST_PATTERN.test(text);
}

/**
 * The docker reference grammar's rule for "does this first path component name a registry"
 * (distribution/reference `splitDockerDomain`): a dot, a port, `localhost`, or upper case,
 * which no repository name may contain.
 */
export function looksLikeRegistryHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component !== component.toLowerCase();
}

/** Registry names compare case-insensitively (DNS); config keys are matched the same way. */
export function normalizeRegistryHost(host: string): string {
  return host.toLowerCase();
}
