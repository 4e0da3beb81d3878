/**
 * Registry host names as they appear in `?ns=` (containerd hosts.toml) and in path prefixes
 * (podman registries.conf). They are compared against configured upstream names only, never
 * turned into URLs, so a request can never make the mirror dial a host of its choosing.
 */
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOST_PATTERN = new RegExp(`^(?:localhost|${LABEL}(?:\\.${LABEL})+)(?::[0-9]{1,5})?$`);

export function isRegistryHost(text: string): boolean {
  return text.length <= 253 && HOST_PATTERN.test(text);
}

/** The docker reference grammar's rule for "does this first path component name a registry". */
export function looksLikeRegistryHost(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

/** Registry names compare case-insensitively (DNS); config keys are matched the same way. */
export function normalizeRegistryHost(host: string): string {
  return host.toLowerCase();
}
