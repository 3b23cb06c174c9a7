/**
 * Plugin wiring: options, @fastify/websocket, the WebSocket route and its handshake checks, the `realtime`
 * decorator, heartbeat, health, metrics and AsyncAPI routes, and shutdown (acks first, then 1001 to every socket in
 * preClose, the metrics and the adapter released in onClose).
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify'
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import Type from 'typebox'
import type { WebSocket } from 'ws'
import { ChannelRegistry } from './channels.js'
import { Connection, connectionOf, type ConnectionContext } from './connection.js'
import { CHANNEL_TOPIC_PREFIX, CloseCode } from './constants.js'
import { publishDiff } from './presence.js'
import { createCounters, Inflight } from './counters.js'
import { Deflater, wsPerMessageDeflate } from './deflate.js'
import { FST_REALTIME_ALREADY_REGISTERED } from './errors.js'
import { boundHandshakes, handshakeDone } from './handshake-timeout.js'
import { createMetrics, NO_METRICS } from './metrics.js'
import { resolveOptions, type AuthResult, type RealtimePluginOptions } from './options.js'
import { DeviceId, isChannelName, isDeviceId } from './protocol.js'
import { createRealtime, type Realtime } from './realtime.js'

/** What the checks before the 101 decided, kept from the preHandler hook to wsHandler. */
interface Handshake { deviceId: string, auth: unknown, channels: string[] }

const querystring = Type.Object({ deviceId: Type.Optional(DeviceId) })
/** Routes kept out of generated HTTP docs (@fastify/swagger reads `hide`; Fastify's own types do not list it). */
const HIDDEN = { hide: true } as FastifySchema

async function realtime (fastify: FastifyInstance, opts: RealtimePluginOptions<any, any>): Promise<void> {
  if (fastify.hasDecorator('realtime')) throw new FST_REALTIME_ALREADY_REGISTERED()
  const options = resolveOptions(opts)
  const { adapter, authenticate, originCheck, maxConnections } = options
  const log = fastify.log.child({ plugin: 'fastify-realtime' })
  const counters = createCounters()
  // Created before the adapter connects: a metric name clash must fail the registration with nothing opened. The
  // registry may be scraped before the state below exists (another app on a shared registry): the gauges read 0.
  const live: { ctx?: ConnectionContext, api?: Realtime<any> } = {}
  const metrics = options.metrics === undefined
    ? NO_METRICS
    : createMetrics(options.metrics, {
      connections: () => live.ctx?.connections.size ?? 0,
      channels: () => live.api?.health().channels ?? 0,
      topics: () => live.ctx?.registry.topicCount ?? 0,
      inflight: () => live.ctx?.inflight.count ?? 0,
      adapterUp: () => live.api?.health().adapter === 'ready',
      counters
    }, {
      actions: options.actions.keys(),
      handledActions: [...options.actions.values()].filter((def) => def.handler !== undefined).map((def) => def.name),
      history: options.history !== undefined,
      sentFrameTypes: [...(options.history === undefined ? [] : ['reset']), ...(options.presence === undefined ? [] : ['presence', 'presence_diff'])]
    })
  fastify.addHook('onClose', async () => { metrics.close() })
  await adapter.init?.(fastify)

  const { history, presence } = options
  const ctx: ConnectionContext = {
    adapter,
    registry: new ChannelRegistry(adapter, log, metrics, (topic) => {
      if (history === undefined || !topic.startsWith(CHANNEL_TOPIC_PREFIX) || history(topic.slice(CHANNEL_TOPIC_PREFIX.length)) === undefined) return undefined
      return (since, limit) => adapter.history!.read(topic, { since, limit })
    }),
    options,
    log,
    connections: new Set(),
    counters,
    inflight: new Inflight(),
    metrics,
    deflater: new Deflater(options.perMessageDeflate, counters)
  }
  live.ctx = ctx

  const { connections } = ctx
  if (history !== undefined) {
    await adapter.history!.start?.()
    // After an outage of the adapter, every followed stream is read up to its top: nothing published meanwhile is lost.
    adapter.history!.onReconnect?.(() => ctx.registry.catchUp())
  }
  if (presence !== undefined) {
    // Members of a node that died (swept here) or changed while the backend was away: diffs to their channels.
    adapter.presence!.onChange((topic, change) => publishDiff(adapter, log, topic.slice(CHANNEL_TOPIC_PREFIX.length), change))
    await adapter.presence!.start?.()
  }
  const state = { closing: false, closed: false }
  /**
   * Upgrades past the checks whose socket is not a connection yet (they count against maxConnections), by TCP socket
   * (by request for an injected upgrade, which has none). One listener for all of them drops a socket that closes
   * before its upgrade: no closure per handshake.
   */
  const handshakes = new Map<object, Handshake>()
  function abandoned (this: Socket): void { handshakes.delete(this) }

  const ownWebsocket = !fastify.hasDecorator('websocketServer')
  if (ownWebsocket) {
    // closeTimeout (ws >= 8.18) bounds each close handshake; @types/ws does not list it yet.
    const wsOptions = {
      maxPayload: options.maxPayload,
      closeTimeout: options.closeTimeout,
      // The plugin tracks its connections itself (app.realtime.connections()): ws's own Set would cost a Set entry,
      // a close listener and its closure per connection (~0.18 KiB, S4). `fastify.websocketServer.clients` is undefined.
      clientTracking: false,
      perMessageDeflate: wsPerMessageDeflate(options.perMessageDeflate),
      ...(options.handleProtocols === undefined ? {} : { handleProtocols: options.handleProtocols })
    }
    await fastify.register(websocket, {
      options: wsOptions,
      // The default error handler terminate()s the socket, which drops a close frame ws already queued
      // (1009 for an oversize frame becomes 1006). ws closes the socket itself after such errors.
      errorHandler (err, _socket, request) {
        request.log.debug({ err }, 'fastify-realtime: websocket error')
      },
      // Our own preClose hook below sends 1001; this one only stops the ws server.
      preClose (done) {
        this.websocketServer.close()
        done()
      }
    })
  }

  boundHandshakes(fastify.server, options.handshakeTimeout)
  // ws emits `headers` right before it writes the 101: our upgrades keep it corked until the welcome is written
  // (Connection#open uncorks), so both leave in one write (one syscall fewer per connection).
  fastify.websocketServer.on('headers', (_headers: string[], req: IncomingMessage) => {
    if (req.socket != null && handshakes.has(req.socket)) req.socket.cork()
  })

  const realtimeApi = createRealtime(ctx, state)
  live.api = realtimeApi
  fastify.decorate('realtime', realtimeApi)

  /** The checks after `authenticate` (`auth`: what it resolved); the upgrade proceeds when `done` is called. */
  function admit (request: FastifyRequest, reply: FastifyReply, auth: AuthResult | undefined, done: (err?: Error) => void): void {
    // Closed meanwhile (handshakeTimeout, or the client left): no upgrade will follow, nothing to keep.
    const raw = request.raw.socket
    if (raw?.destroyed === true) return refuse(reply, 503, 'Handshake abandoned')
    const asked = (request.query as { deviceId?: string }).deviceId
    const deviceId = auth?.deviceId ?? asked ?? randomUUID()
    if ((asked !== undefined && asked !== deviceId) || !isDeviceId(deviceId)) return refuse(reply, 403)
    const channels = auth?.channels ?? []
    if (!Array.isArray(channels) || !channels.every(isChannelName)) {
      request.log.error({ channels }, 'fastify-realtime: authenticate returned channels that are not an array of channel names')
      return refuse(reply, 500)
    }
    handshakes.set(raw ?? request.raw, { deviceId, auth, channels })
    // An injected upgrade (app.injectWS) has no TCP socket: its handshake cannot be abandoned before the upgrade.
    raw?.on('close', abandoned)
    done()
  }

  fastify.route({
    method: 'GET',
    url: options.path,
    schema: { querystring, hide: true },
    // Refused upgrades (400 query, 401/403/503 below, 426 plain GET, 429 from @fastify/rate-limit) by status.
    ...(options.metrics === undefined
      ? {}
      : { async onResponse (_request: FastifyRequest, reply: FastifyReply) { if (reply.statusCode >= 400) metrics.handshakeRejected(reply.statusCode) } }),
    // Callback style: without `authenticate` the checks finish in the same tick (no promise, no microtask per upgrade).
    preHandler (request, reply, done) {
      if (!request.ws) return done()
      if (state.closing) return refuse(reply, 503, 'Server is shutting down')
      if (!originCheck(request)) {
        request.log.info({ origin: request.headers.origin, host: request.headers.host },
          'fastify-realtime: upgrade refused (403), Origin not allowed; list it in the allowedOrigins option to accept it ' +
          '(CORS settings do not apply to WebSocket upgrades)')
        return refuse(reply, 403, 'Origin not allowed')
      }
      if (maxConnections > 0 && connections.size + handshakes.size >= maxConnections) {
        return refuse(reply, 503, 'Too many connections')
      }
      if (authenticate === undefined) return admit(request, reply, undefined, done)
      const refused = (err: unknown): void => {
        request.log.info({ err }, 'fastify-realtime: authentication refused')
        refuse(reply, (err as { statusCode?: number } | null)?.statusCode === 403 ? 403 : 401)
      }
      let result
      try {
        result = authenticate(request)
      } catch (err) {
        return refused(err)
      }
      Promise.resolve(result).then((auth) => admit(request, reply, auth, done), refused).catch(done)
    },
    handler (_request, reply) {
      return reply.code(426).header('upgrade', 'websocket').send({
        statusCode: 426, error: 'Upgrade Required', message: 'This endpoint accepts WebSocket connections only'
      })
    },
    wsHandler (socket, request) {
      const raw = request.raw.socket as RawSocket | null
      const key = raw ?? request.raw
      const handshake = handshakes.get(key)!
      handshakes.delete(key)
      raw?.off('close', abandoned)
      handshakeDone(request.raw)
      const connection = new Connection(ctx, socket, handshake.deviceId, handshake.auth, handshake.channels)
      releaseRequest(socket, raw, ownWebsocket)
      if (state.closing) connection.close(CloseCode.GOING_AWAY, 'server shutting down')
    }
  })

  if (options.healthRoute !== undefined) {
    fastify.get(options.healthRoute, async (_request, reply) => {
      const health = realtimeApi.health()
      return reply.code(health.status === 'ok' ? 200 : 503).send(health)
    })
  }

  const metricsRoute = options.metrics?.route
  if (metricsRoute !== undefined) {
    const registry = options.metrics!.registry
    fastify.get(metricsRoute, { schema: HIDDEN }, async (_request, reply) => {
      const text = await registry.metrics()
      return reply.type(registry.contentType).send(text)
    })
  }

  if (options.asyncapi !== undefined) {
    // Built once, when the app is ready: an action schema that cannot be described fails ready().
    fastify.addHook('onReady', async () => { realtimeApi.asyncapi() })
    if (options.asyncapi.route !== undefined) {
      fastify.get(options.asyncapi.route, { schema: HIDDEN }, async () => realtimeApi.asyncapi())
    }
  }

  let heartbeat: NodeJS.Timeout | undefined
  if (options.heartbeatInterval > 0) {
    heartbeat = setInterval(() => {
      for (const connection of connections) connection.heartbeat()
    }, options.heartbeatInterval)
    heartbeat.unref()
  }

  fastify.addHook('preClose', async () => {
    state.closing = true
    clearInterval(heartbeat)
    // Every action already handed to the adapter gets its ack (or UNAVAILABLE) before the 1001.
    await ctx.inflight.drained(options.closeTimeout)
    const closed: Array<Promise<void>> = []
    for (const connection of connections) {
      closed.push(connection.whenClosed())
      connection.close(CloseCode.GOING_AWAY, 'server shutting down')
    }
    await Promise.all(closed)
  })

  fastify.addHook('onClose', async () => {
    await adapter.close()
    state.closed = true
  })
}

/** The TCP socket of an upgrade; `_httpMessage` is Node's link to the ServerResponse @fastify/websocket assigned. */
type RawSocket = Socket & { _httpMessage?: ServerResponse | null }

/**
 * Drops what would keep the Fastify request and reply (and Node's request and response) alive for the life of the
 * WebSocket: Node's socket-to-response link, and, when the plugin registered @fastify/websocket itself, the error
 * listener it adds (a closure over request and reply, which only logs through our errorHandler) for a shared one.
 */
function releaseRequest (socket: WebSocket, raw: RawSocket | null, ownWebsocket: boolean): void {
  const response = raw?._httpMessage
  if (response != null) response.detachSocket(raw!)
  if (!ownWebsocket) return
  const listeners = socket.listeners('error')
  // @fastify/websocket adds its listener right before calling wsHandler: the last one.
  socket.off('error', listeners[listeners.length - 1] as (...args: unknown[]) => void)
  socket.on('error', onSocketError)
}

function onSocketError (this: WebSocket, err: Error): void {
  connectionOf(this)?.log.debug({ err }, 'fastify-realtime: websocket error')
}

const REASONS: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 500: 'Internal Server Error', 503: 'Service Unavailable' }

/** Answers a refused upgrade with a JSON error body; never an internal message. */
function refuse (reply: FastifyReply, status: 401 | 403 | 500 | 503, message = REASONS[status]!): void {
  reply.code(status).send({ statusCode: status, error: REASONS[status], message })
}

/**
 * The fastify-realtime plugin. Registers a WebSocket route (default `/ws`) speaking protocol v1.1
 * (docs/protocol.md) and decorates `fastify.realtime`. Requires Fastify 5.
 * @throws FST_REALTIME_INVALID_OPTION at register time for an invalid option.
 */
export const realtimePlugin = fp(realtime, {
  name: 'fastify-realtime',
  fastify: '5.x'
})
