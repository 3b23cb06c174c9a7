/**
 * The endpoint URL: normalised once at creation, then given the deviceId on every (re)connect.
 */

/**
 * Normalises the endpoint: `ws:` / `wss:` URLs as given; `http:` / `https:` become `ws:` / `wss:`; in a
 * browser a relative URL (`/ws`) is resolved against the page.
 * @param url the full endpoint, e.g. `ws://127.0.0.1:3000/ws`
 * @returns the absolute `ws:` / `wss:` URL as a string
 * @throws TypeError when `url` is not a valid URL or not ws/wss/http/https
 */
export function endpointUrl (url: string | URL): string {
  const base = (globalThis as { location?: { href?: string } }).location?.href
  let parsed: URL
  try {
    parsed = new URL(url, base)
  } catch {
    throw new TypeError(`createClient: invalid url ${JSON.stringify(String(url))}`)
  }
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:'
  else if (parsed.protocol === 'https:') parsed.protocol = 'wss:'
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new TypeError(`createClient: url must be ws:, wss:, http: or https:, got ${JSON.stringify(parsed.href)}`)
  }
  parsed.hash = ''
  return parsed.href
}

/** The endpoint with `?deviceId=` set (replacing any given in the URL) when a deviceId is known. */
export function withDeviceId (endpoint: string, deviceId: string | undefined): string {
  if (deviceId === undefined) return endpoint
  const url = new URL(endpoint)
  url.searchParams.set('deviceId', deviceId)
  return url.href
}
