/**
 * Config entries that name hosts an upstream may send us to (`tokenRealms`, `redirectHosts`):
 * `host` means that host on the URL scheme's default port, `host:port` is exact. Host names
 * compare case-insensitively, as DNS names do.
 */
export function matchesHostEntry(url: URL, entry: string): boolean {
  const wanted = entry.trim().toLowerCase();
  return wanted === url.host || wanted === hostWithPort(url);
}

/** `host:port` with the scheme's default port filled in, so that both spellings compare equal. */
export function hostWithPort(url: URL): string {
  return `${url.hostname}:${url.port || (url.protocol === 'https:' ? '443' : '80')}`;
}
