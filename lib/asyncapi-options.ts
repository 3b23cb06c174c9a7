/**
 * The `asyncapi` register option: types, defaults and validation. A bad value throws
 * `FST_REALTIME_INVALID_OPTION` at register time.
 */
import { FST_REALTIME_INVALID_OPTION } from './errors.js'

/** One server of the document (AsyncAPI 3.0 Server Object, restricted to WebSocket). */
export interface AsyncApiServer {
  /** `host[:port]`, e.g. `'chat.example.com'` or `'localhost:3000'`. */
  host: string
  /** `'ws'` or `'wss'`. */
  protocol: 'ws' | 'wss'
  /** A path prefix in front of the endpoint's path, e.g. `'/api'`. Default none. */
  pathname?: string
  /** Free text. */
  description?: string
}

/** Option `asyncapi` of the plugin. */
export interface AsyncApiOptions {
  /** Route serving the document as JSON (with `schema: { hide: true }`), or `false` for none. Default `'/asyncapi.json'`. */
  route?: string | false
  /** The document's `info`. Defaults: title `'fastify-realtime WebSocket API'`, version `'1.0.0'`. */
  info?: { title?: string, version?: string, description?: string }
  /** Named servers of the document (`{ production: { host: 'chat.example.com', protocol: 'wss' } }`). Default none. */
  servers?: Record<string, AsyncApiServer>
}

/** `AsyncApiOptions` after defaults and validation. */
export interface ResolvedAsyncApiOptions {
  route: string | undefined
  info: { title: string, version: string, description?: string }
  servers: Record<string, AsyncApiServer> | undefined
}

/** Default route of the document. */
export const DEFAULT_ASYNCAPI_ROUTE = '/asyncapi.json'
const DEFAULT_TITLE = 'fastify-realtime WebSocket API'

/**
 * Applies defaults and validates the `asyncapi` option; `undefined` or `false` turns the document off.
 * @throws FST_REALTIME_INVALID_OPTION naming the bad field.
 */
export function resolveAsyncApiOptions (value: unknown): ResolvedAsyncApiOptions | undefined {
  if (value === undefined || value === false) return undefined
  if (value === true) value = {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FST_REALTIME_INVALID_OPTION('asyncapi must be an object { route?, info?, servers? }')
  }
  const { route, info, servers } = value as AsyncApiOptions
  let resolvedRoute: string | undefined = DEFAULT_ASYNCAPI_ROUTE
  if (route === false) resolvedRoute = undefined
  else if (route !== undefined) {
    if (typeof route !== 'string' || !/^\/[^\s?#]*$/.test(route)) {
      throw new FST_REALTIME_INVALID_OPTION(`asyncapi.route must be false or a string starting with "/" without query or spaces, got ${JSON.stringify(route)}`)
    }
    resolvedRoute = route
  }
  if (info !== undefined && (info === null || typeof info !== 'object')) {
    throw new FST_REALTIME_INVALID_OPTION('asyncapi.info must be an object { title?, version?, description? }')
  }
  const resolvedInfo: ResolvedAsyncApiOptions['info'] = {
    title: optionalText(info?.title, 'asyncapi.info.title') ?? DEFAULT_TITLE,
    version: optionalText(info?.version, 'asyncapi.info.version') ?? '1.0.0'
  }
  const description = optionalText(info?.description, 'asyncapi.info.description')
  if (description !== undefined) resolvedInfo.description = description
  return { route: resolvedRoute, info: resolvedInfo, servers: resolveServers(servers) }
}

function optionalText (value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0) throw new FST_REALTIME_INVALID_OPTION(`${name} must be a non-empty string`)
  return value
}

function resolveServers (servers: unknown): Record<string, AsyncApiServer> | undefined {
  if (servers === undefined) return undefined
  if (servers === null || typeof servers !== 'object' || Array.isArray(servers)) {
    throw new FST_REALTIME_INVALID_OPTION('asyncapi.servers must be an object of name -> { host, protocol, pathname?, description? }')
  }
  const resolved: Record<string, AsyncApiServer> = {}
  for (const [name, server] of Object.entries(servers as Record<string, unknown>)) {
    const where = `asyncapi.servers["${name}"]`
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new FST_REALTIME_INVALID_OPTION(`${where}: a server name matches ^[A-Za-z0-9_.-]+$`)
    if (server === null || typeof server !== 'object') throw new FST_REALTIME_INVALID_OPTION(`${where} must be an object { host, protocol }`)
    const { host, protocol, pathname, description } = server as Partial<AsyncApiServer>
    if (typeof host !== 'string' || !/^[^\s/]+$/.test(host)) {
      throw new FST_REALTIME_INVALID_OPTION(`${where}.host must be a host[:port] without scheme or path, got ${JSON.stringify(host)}`)
    }
    if (protocol !== 'ws' && protocol !== 'wss') throw new FST_REALTIME_INVALID_OPTION(`${where}.protocol must be 'ws' or 'wss'`)
    const entry: AsyncApiServer = { host, protocol }
    if (pathname !== undefined) {
      if (typeof pathname !== 'string' || !/^\/[^\s?#]*$/.test(pathname)) {
        throw new FST_REALTIME_INVALID_OPTION(`${where}.pathname must be a string starting with "/"`)
      }
      entry.pathname = pathname
    }
    const text = optionalText(description, `${where}.description`)
    if (text !== undefined) entry.description = text
    resolved[name] = entry
  }
  return resolved
}
