/**
 * Register options of the plugin: their types, defaults and validation. A bad option throws
 * `FST_REALTIME_INVALID_OPTION` at register time, never later.
 */
import type { IncomingMessage } from 'node:http'
import type { FastifyRequest } from 'fastify'
import { compileActions, type ActionDefinition, type ActionMap } from './actions.js'

export type { ActionMap } from './actions.js'
import { isAdapter, type RealtimeAdapter } from './adapters/adapter.js'
import { resolveAsyncApiOptions, type AsyncApiOptions, type ResolvedAsyncApiOptions } from './asyncapi-options.js'
import { memoryAdapter } from './adapters/memory.js'
import type { RealtimeConnection } from './connection.js'
import {
  DEFAULT_CLOSE_TIMEOUT, DEFAULT_HANDLER_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_CHANNELS_PER_CONNECTION, DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_PAYLOAD, DEFAULT_PATH
} from './constants.js'
import { resolvePerMessageDeflate, type PerMessageDeflateOptions, type ResolvedDeflate } from './deflate.js'
import { FST_REALTIME_INVALID_OPTION } from './errors.js'
import { resolveMetricsOptions, type MetricsOptions, type ResolvedMetricsOptions } from './metrics-options.js'
import { integerOption, oneOf, optionalFunction, routePath } from './option-checks.js'
import { createFrameLimiter, type FrameLimiter, type RateLimitOptions } from './rate-limit.js'
import { createOriginCheck, type AllowedOrigins, type OriginCheck } from './origin.js'
import { resolveHistory, type HistoryOf, type HistoryOption } from './history.js'
import { resolvePresence, type PresenceOf, type PresenceOption } from './presence.js'

/**
 * What `authenticate` returns: any identity object, exposed as `connection.auth`. When it carries a `deviceId`,
 * the connection gets that deviceId and a client asking for another one is refused with 403. `channels` (channel
 * names) are joined server-side right after the welcome, on every connect and reconnect (unsolicited `joined`
 * frames, no `authorizeJoin`); names that are not valid channel names refuse the upgrade with 500 (logged).
 */
export type AuthResult = { deviceId?: string, channels?: string[] } & Record<string, unknown>

/**
 * Options of `fastify.register(realtimePlugin, options)`. `A` is the action map; `Auth` is what `authenticate`
 * returns, the type of `connection.auth` in every hook and `authorize*` callback. Both are inferred when the options
 * are written inside `realtimeOptions({...})`, or can be given: `RealtimePluginOptions<typeof actions, MyAuth>`.
 */
export interface RealtimePluginOptions<A extends ActionMap = ActionMap, Auth extends AuthResult = AuthResult> {
  /** Route path of the WebSocket endpoint. Default `'/ws'`. */
  path?: string
  /**
   * Action name (`^[A-Za-z0-9:_.-]{1,128}$`) -> TypeBox schema of its payload (a relay action), or
   * `{ payload, reply?, handler? }` (handled when it has a `handler`, see `ActionSpec`). Every schema must be a valid
   * JSON Schema without functions (checked at register). Default `{}`.
   */
  actions?: A
  /** The pub/sub adapter. Default `memoryAdapter()` (one node). */
  adapter?: RealtimeAdapter
  /**
   * Runs before the 101, after the query is validated. Return an identity (exposed as `connection.auth`);
   * throw to refuse: an error whose `statusCode` is 403 gives 403, anything else 401. No upgrade happens.
   */
  authenticate?: (request: FastifyRequest) => Auth | undefined | Promise<Auth | undefined>
  /** Called for each join; anything but `true` refuses it with a `FORBIDDEN` error reply (a throw: `INTERNAL`, logged). */
  authorizeJoin?: (connection: RealtimeConnection<Auth>, channel: string) => boolean | Promise<boolean>
  /** Largest accepted frame in bytes; a larger one closes the connection with 1009. Default 65536 (64 KiB). */
  maxPayload?: number
  /** Most channels one connection may join; more get a `LIMIT_EXCEEDED` error reply. Default 100. */
  maxChannelsPerConnection?: number
  /** Heartbeat ping interval in ms; a connection that sent nothing (no pong, no frame) since the previous ping is terminated. 0 disables. Default 30000. */
  heartbeatInterval?: number
  /** Time in ms a close handshake may take before the socket is destroyed. Default 1000. */
  closeTimeout?: number
  /**
   * Longest time in ms an upgrade may take, from the connection to the 101; past it the socket is closed (a client
   * that sends half an upgrade request and then nothing), at most twice this after it connected. Bounds the headers
   * with Node's `headersTimeout` and `connectionsCheckingInterval` (lowered to this for the whole HTTP server, since a
   * request has no path before its headers are in; the server answers 408) and the rest (hooks, `authenticate`) with
   * one timer per upgrade. 0 disables. Default 10000.
   */
  handshakeTimeout?: number
  /** Deepest array/object nesting accepted in a client frame; deeper gets `BAD_REQUEST`. Default 32. */
  maxDepth?: number
  /**
   * Called for each action after validation; anything but `true` refuses it with `FORBIDDEN` (a throw: `INTERNAL`).
   * May be async: later frames of the connection then wait for it, so publish order is kept. `channel` is
   * `undefined` only for a channel-less call of a handled action.
   */
  authorizePublish?: (connection: RealtimeConnection<Auth>, channel: string | undefined, action: string) => boolean | Promise<boolean>
  /**
   * Longest time in ms a handled action's handler may take; past it the sender gets `TIMEOUT` and the handler's
   * later result is dropped (the handler is not cancelled). Default 10000.
   */
  handlerTimeout?: number
  /**
   * Called after the welcome frame was sent (and after the `channels` returned by `authenticate` were joined).
   * Sync or async; a throw is logged and closes nothing.
   */
  onConnect?: (connection: RealtimeConnection<Auth>) => unknown
  /**
   * Called once per connection after its socket closed, whatever the cause (client close, missed heartbeat, slow
   * consumer, shutdown, `app.realtime.disconnect`), after `onLeave` for every channel it still had. `code` is the
   * close code (1006 when the socket was destroyed without a close frame), `reason` the close reason.
   */
  onDisconnect?: (connection: RealtimeConnection<Auth>, close: { code: number, reason: string }) => unknown
  /** Called after a `joined` was sent (client join, or a server-side join). Sync or async; a throw is logged. */
  onJoin?: (connection: RealtimeConnection<Auth>, channel: string) => unknown
  /**
   * Called after a channel was left (`left` sent, client- or server-initiated), and for every channel still joined
   * when the connection closes (before `onDisconnect`). Sync or async; a throw is logged.
   */
  onLeave?: (connection: RealtimeConnection<Auth>, channel: string) => unknown
  /** Unsent bytes (`bufferedAmount`) past which a connection is a slow consumer. Default 1048576 (1 MiB). */
  maxBufferedBytes?: number
  /**
   * What happens to a slow consumer: `'close'` sends 1013 and destroys the socket after `closeTimeout` if the
   * close handshake has not finished; `'drop'` skips its deliveries while over the bound (counted in `stats()`).
   * Default `'close'`.
   */
  slowConsumer?: 'close' | 'drop'
  /** Inbound frames per connection: `{ max: 5000, timeWindow: 1000 }` by default; `false` disables. */
  rateLimit?: RateLimitOptions | false
  /** Most connections on this node; an upgrade over it gets HTTP 503 before the 101. Default 0 (unlimited). */
  maxConnections?: number
  /**
   * Allowed `Origin`s of the handshake: exact origins or a predicate; a refused one gets HTTP 403 before the 101.
   * Default: the Origin's host:port must match the `Host` header. Requests without `Origin` always pass.
   */
  allowedOrigins?: AllowedOrigins
  /** Path of an HTTP health route serving `app.realtime.health()` (200 ok, 503 degraded). Default none. */
  healthRoute?: string
  /**
   * Picks the subprotocol answered in `Sec-WebSocket-Protocol` (RFC 6455 §4.2.2) from those the client offered,
   * or `false` for none. Needed when clients pass a token as a subprotocol (`new WebSocket(url, ['bearer', token])`):
   * answer `'bearer'`. Default: none chosen.
   */
  handleProtocols?: (protocols: Set<string>, request: IncomingMessage) => string | false
  /**
   * Per-channel history with offsets and recovery (docs/recovery.md): `false` (default), `{ size, ttl }` for every
   * channel (`size` messages kept, `ttl` ms after the last publish), or `(channel) => { size, ttl } | false`.
   * Deliveries of such channels carry `offset`, `joined` carries `epoch`/`offset`, and a join may send `since`.
   * @throws FST_REALTIME_INVALID_OPTION at register when the adapter has no history capability.
   */
  history?: HistoryOption
  /**
   * Presence (who is in a channel, across nodes): `false` (default), `true` for every channel, or
   * `(channel) => boolean`. A joiner gets a `presence` snapshot, members get `presence_diff` frames; a member's
   * `info` is `presenceInfo` from what `authenticate` returned.
   * @throws FST_REALTIME_INVALID_OPTION at register when the adapter has no presence capability.
   */
  presence?: PresenceOption
  /**
   * Prometheus metrics of this node (docs/observability.md), created on the app's own client:
   * `{ client, registry?, prefix?, route?, buckets? }`. Off by default. A metric name already registered in the
   * registry fails the registration with FST_REALTIME_METRICS_CONFLICT.
   */
  metrics?: MetricsOptions
  /**
   * The AsyncAPI 3.0 document of the endpoint, built at `onReady` from the actions and served on `route`
   * (default `'/asyncapi.json'`): `{ route?, info?, servers? }`, or `true` for the defaults. Off by default
   * (`app.realtime.asyncapi()` still builds it on demand). An action schema that cannot be described fails
   * `ready()` with FST_REALTIME_ASYNCAPI_UNSUPPORTED_SCHEMA.
   */
  asyncapi?: AsyncApiOptions | boolean
  /**
   * Offers permessage-deflate (RFC 7692) with `server_no_context_takeover` and `client_no_context_takeover`: `true`,
   * or `{ threshold?, level? }` (payload bytes from which a message is compressed, default 1024; zlib level 1-9,
   * default 1). A delivery is compressed once per node and the same frame written to every member that negotiated
   * it; members without it get plain frames. Default `false`.
   */
  perMessageDeflate?: PerMessageDeflateOptions | boolean
}

/**
 * Every option name of `RealtimePluginOptions`, as a record so that the type check fails when an option is added to
 * the interface and not here (or the reverse). `register` refuses any other key: a misspelt `maxPayloads` must not be
 * silently ignored.
 */
const OPTION_NAMES: { readonly [K in keyof Required<RealtimePluginOptions>]: true } = {
  path: true,
  actions: true,
  adapter: true,
  authenticate: true,
  authorizeJoin: true,
  maxPayload: true,
  maxChannelsPerConnection: true,
  heartbeatInterval: true,
  closeTimeout: true,
  handshakeTimeout: true,
  maxDepth: true,
  authorizePublish: true,
  maxBufferedBytes: true,
  slowConsumer: true,
  rateLimit: true,
  maxConnections: true,
  allowedOrigins: true,
  healthRoute: true,
  handleProtocols: true,
  handlerTimeout: true,
  onConnect: true,
  onDisconnect: true,
  onJoin: true,
  onLeave: true,
  history: true,
  presence: true,
  metrics: true,
  asyncapi: true,
  perMessageDeflate: true
}
/** The names of every plugin option. */
export const KNOWN_OPTIONS: readonly string[] = Object.keys(OPTION_NAMES)

/**
 * Returns `options` unchanged, typed: the action map and the return type of `authenticate` are inferred, so
 * `connection.auth` is typed in every hook and `authorize*` callback without a cast.
 *
 * ```ts
 * await app.register(realtimePlugin, realtimeOptions({
 *   actions,
 *   authenticate: async (request) => ({ deviceId: user.id, role: user.role }),
 *   authorizeJoin: (connection, channel) => connection.auth.role === 'admin' || !channel.startsWith('admin:')
 * }))
 * ```
 */
export function realtimeOptions<A extends ActionMap = ActionMap, Auth extends AuthResult = AuthResult> (options: RealtimePluginOptions<A, Auth>): RealtimePluginOptions<A, Auth> {
  return options
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  path: string
  actions: ReadonlyMap<string, ActionDefinition>
  adapter: RealtimeAdapter
  authenticate: RealtimePluginOptions<ActionMap, any>['authenticate']
  authorizeJoin: RealtimePluginOptions<ActionMap, any>['authorizeJoin']
  maxPayload: number
  maxChannelsPerConnection: number
  heartbeatInterval: number
  closeTimeout: number
  handshakeTimeout: number
  maxDepth: number
  authorizePublish: RealtimePluginOptions<ActionMap, any>['authorizePublish']
  handlerTimeout: number
  onConnect: RealtimePluginOptions<ActionMap, any>['onConnect']
  onDisconnect: RealtimePluginOptions<ActionMap, any>['onDisconnect']
  onJoin: RealtimePluginOptions<ActionMap, any>['onJoin']
  onLeave: RealtimePluginOptions<ActionMap, any>['onLeave']
  maxBufferedBytes: number
  slowConsumer: 'close' | 'drop'
  limiter: FrameLimiter | undefined
  maxConnections: number
  originCheck: OriginCheck
  healthRoute: string | undefined
  handleProtocols: RealtimePluginOptions<ActionMap, any>['handleProtocols']
  /** The history of a channel, `undefined` without; the whole function is `undefined` when history is off. */
  history: HistoryOf | undefined
  /** Whether a channel has presence; `undefined` when presence is off. */
  presence: PresenceOf | undefined
  metrics: ResolvedMetricsOptions | undefined
  asyncapi: ResolvedAsyncApiOptions | undefined
  /** permessage-deflate settings; `undefined` when not offered. */
  perMessageDeflate: ResolvedDeflate | undefined
}

/** Applies defaults and validates every option. @throws FST_REALTIME_INVALID_OPTION */
export function resolveOptions (opts: RealtimePluginOptions<any, any>): ResolvedOptions {
  if (opts === null || typeof opts !== 'object') throw new FST_REALTIME_INVALID_OPTION('options must be an object')
  refuseUnknown(opts)
  const path = routePath(opts.path ?? DEFAULT_PATH, 'path')
  const adapter = opts.adapter ?? memoryAdapter()
  if (!isAdapter(adapter)) {
    throw new FST_REALTIME_INVALID_OPTION('adapter must implement subscribe, unsubscribe, publish and close (see RealtimeAdapter)')
  }
  return {
    path,
    actions: compileActions(opts.actions ?? {}),
    adapter,
    authenticate: optionalFunction(opts.authenticate, 'authenticate'),
    authorizeJoin: optionalFunction(opts.authorizeJoin, 'authorizeJoin'),
    maxPayload: integerOption(opts.maxPayload, DEFAULT_MAX_PAYLOAD, 'maxPayload', 1),
    maxChannelsPerConnection: integerOption(opts.maxChannelsPerConnection, DEFAULT_MAX_CHANNELS_PER_CONNECTION, 'maxChannelsPerConnection', 1),
    heartbeatInterval: integerOption(opts.heartbeatInterval, DEFAULT_HEARTBEAT_INTERVAL, 'heartbeatInterval', 0),
    closeTimeout: integerOption(opts.closeTimeout, DEFAULT_CLOSE_TIMEOUT, 'closeTimeout', 1),
    handshakeTimeout: integerOption(opts.handshakeTimeout, DEFAULT_HANDSHAKE_TIMEOUT, 'handshakeTimeout (ms)', 0),
    maxDepth: integerOption(opts.maxDepth, DEFAULT_MAX_DEPTH, 'maxDepth', 1),
    authorizePublish: optionalFunction(opts.authorizePublish, 'authorizePublish'),
    handlerTimeout: integerOption(opts.handlerTimeout, DEFAULT_HANDLER_TIMEOUT, 'handlerTimeout (ms)', 1),
    onConnect: optionalFunction(opts.onConnect, 'onConnect'),
    onDisconnect: optionalFunction(opts.onDisconnect, 'onDisconnect'),
    onJoin: optionalFunction(opts.onJoin, 'onJoin'),
    onLeave: optionalFunction(opts.onLeave, 'onLeave'),
    maxBufferedBytes: integerOption(opts.maxBufferedBytes, DEFAULT_MAX_BUFFERED_BYTES, 'maxBufferedBytes', 1),
    slowConsumer: oneOf(opts.slowConsumer, ['close', 'drop'] as const, 'slowConsumer'),
    limiter: createFrameLimiter(opts.rateLimit),
    maxConnections: integerOption(opts.maxConnections, 0, 'maxConnections', 0),
    originCheck: createOriginCheck(opts.allowedOrigins),
    healthRoute: opts.healthRoute === undefined ? undefined : routePath(opts.healthRoute, 'healthRoute'),
    handleProtocols: optionalFunction(opts.handleProtocols, 'handleProtocols'),
    history: resolveHistory(opts.history, adapter),
    presence: resolvePresence(opts.presence, adapter),
    metrics: resolveMetricsOptions(opts.metrics),
    asyncapi: resolveAsyncApiOptions(opts.asyncapi),
    perMessageDeflate: resolvePerMessageDeflate(opts.perMessageDeflate)
  }
}

const known = new Set<string>(KNOWN_OPTIONS)
/** Fastify's own register options, which reach the plugin function alongside ours. */
const FASTIFY_REGISTER_OPTIONS = new Set(['prefix', 'logLevel', 'logSerializers'])

function refuseUnknown (opts: object): void {
  const unknown = Object.keys(opts).filter((key) => !known.has(key) && !FASTIFY_REGISTER_OPTIONS.has(key))
  if (unknown.length === 0) return
  throw new FST_REALTIME_INVALID_OPTION(
    `unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; the options are ${KNOWN_OPTIONS.join(', ')}`)
}
