/** The `url` of an upstream's config entry, checked when the client is built. */
export function parseBaseUrl(name: string, text: string): URL {
  const fail = (why: string) => new TypeError(`upstream ${name}: expected url to be an http(s) base URL such as https://registry-1.docker.io, ${why}`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw fail('got a value that is not a URL'); // not echoed: it may hold a password
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail(`got scheme ${url.protocol}`);
  // Credentials belong in username/password, where they only go to trusted places.
  if (url.username || url.password) throw fail('without user information (put credentials in username and password)');
  if (url.search || url.hash) throw fail('without query or fragment');
  return url;
}
