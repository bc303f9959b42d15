/**
 * Outbound origins the operator configures (the key's `token_uri`, VERTEX_BASE_URL) must be https,
 * except on loopback where local emulators run: a plain-http hop elsewhere would expose tokens.
 */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

export function isAllowedOutboundUrl(url: URL): boolean {
  if (url.username || url.password) return false;
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
}
