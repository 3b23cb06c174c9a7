/**
 * One WebSocket connection: rate-limits, parses and validates client frames, dispatches join / leave / action,
 * sends replies and deliveries (with the slow-consumer bound), answers the heartbeat, and leaves every channel
 * when the socket closes.
 */
import { once } from 'node:events'
import type { Socket } from 'node:net'
import type { WebSocket, RawData } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import type { ChannelRegistry, Member } from './channels.js'
import type { RealtimeAdapter } from './adapters/adapter.js'
import { CHANNEL_TOPIC_PREFIX, CloseCode, DEVICE_TOPIC_PREFIX } from './constants.js'
import type { Counters, Inflight } from './counters.js'
import { writeCorked } from './frame.js'
import type { ResolvedOptions } from './options.js'
import { Verdict } from './rate-limit.js'
import {
  type ActionFrame, type ClientFrame, type ErrorFrame, type RequestId, type WireErrorCode,
  ackFrame, errorFrame, membershipFrame, messageFrame, parseClientFrame, payloadErrors, welcomeFrame
} from './protocol.js'

/** The view of a connection given to `authorizeJoin`, `authorizePublish` and other hooks. */
export interface RealtimeConnection {
  /** The deviceId of this connection (given by the client, by `authenticate`, or assigned). */
  readonly deviceId: string
  /** What `authenticate` returned for this connection, or `undefined` without `authenticate`. */
  readonly auth: unknown
  /** Channels this connection has joined. */
  readonly channels: ReadonlySet<string>
  /** Closes the connection with a close code (default 1000) and a reason of at most 123 bytes. */
  close: (code?: number, reason?: string) => void
}

/** What every connection of one plugin instance shares. */
export interface ConnectionContext {
  adapter: RealtimeAdapter
  registry: ChannelRegistry
  options: ResolvedOptions
  log: FastifyBaseLogger
  connections: Set<Connection>
  counters: Counters
  inflight: Inflight
}

const WS_OPEN = 1
const TEXT = { binary: false }
let serial = 0

export class Connection implements Member, RealtimeConnection {
  readonly deviceId: string
  readonly auth: unknown
  readonly channels = new Set<string>()
  /** Cleared by each heartbeat tick, set again by the pong. */
  alive = true
  #closed = false
  /**
   * Frames that must wait (a join, a leave, an action behind an async authorizePublish) run one at a time, in
   * order; while any is pending, every later frame queues behind it, so replies and publishes keep frame order.
   */
  #queue: Promise<void> = Promise.resolve()
  #queued = 0
  #joining = 0
  readonly #socket: WebSocket
  readonly #ctx: ConnectionContext
  readonly #log: FastifyBaseLogger
  readonly #deviceTopic: string
  readonly #limitKey: string
  /**
   * The TCP socket under ws, for writing prebuilt frames; undefined when an extension (permessage-deflate,
   * negotiated only if the app enabled it) must transform each frame, in which case ws.send() is used.
   */
  readonly #raw: Socket | undefined

  constructor (ctx: ConnectionContext, socket: WebSocket, deviceId: string, auth: unknown) {
    this.#ctx = ctx
    this.#socket = socket
    this.deviceId = deviceId
    this.auth = auth
    this.#deviceTopic = DEVICE_TOPIC_PREFIX + deviceId
    this.#limitKey = ctx.options.limiter?.perDevice === true ? deviceId : `c${++serial}`
    this.#raw = socket.extensions === '' ? (socket as unknown as { _socket: Socket })._socket : undefined
    this.#log = ctx.log.child({ deviceId })
    ctx.connections.add(this)
    socket.on('message', (data, isBinary) => this.#onMessage(data, isBinary))
    socket.on('pong', () => { this.alive = true })
    socket.once('close', () => this.#onClose())
    // Subscribe to direct messages before the welcome, so a sendToDevice() made after it arrives.
    ctx.registry.add(this.#deviceTopic, this).then(() => {
      if (this.#closed) ctx.registry.remove(this.#deviceTopic, this)
      else this.send(welcomeFrame(deviceId))
    }, (err: unknown) => {
      this.#log.warn({ err }, 'fastify-realtime: could not subscribe to direct messages, closing with 1013')
      this.close(CloseCode.TRY_AGAIN_LATER, 'adapter unavailable')
    })
  }

  /**
   * Writes a delivery: the prebuilt frame, the same Buffer for every member, straight to the TCP socket (corked
   * for the tick). Called once per member per message, so it allocates nothing itself. Over `maxBufferedBytes`
   * of unsent data the connection is a slow consumer.
   */
  deliver (payload: Buffer, frame: Buffer): void {
    const socket = this.#socket
    if (socket.readyState !== WS_OPEN) return
    if (socket.bufferedAmount > this.#ctx.options.maxBufferedBytes) {
      this.#slowConsumer()
      return
    }
    if (this.#raw === undefined) socket.send(payload, TEXT)
    else writeCorked(this.#raw, frame)
  }

  /** Sends one serialised server frame. */
  send (text: string): void {
    if (this.#socket.readyState === WS_OPEN) this.#socket.send(text)
  }

  close (code: number = CloseCode.NORMAL, reason = ''): void {
    // close() (not terminate()) so the close frame is queued behind pending output and the code reaches the peer;
    // ws destroys the socket if the handshake does not finish within closeTimeout.
    if (this.#socket.readyState <= WS_OPEN) this.#socket.close(code, reason)
  }

  /** One heartbeat tick: terminates the connection if the previous ping got no pong, else pings again. */
  heartbeat (): void {
    if (!this.alive) {
      this.#log.debug('fastify-realtime: heartbeat missed, terminating')
      this.#socket.terminate()
      return
    }
    this.alive = false
    if (this.#socket.readyState === WS_OPEN) this.#socket.ping()
  }

  /** Resolves when the socket has closed (at once if it already has). */
  async whenClosed (): Promise<void> {
    if (!this.#closed) await once(this.#socket, 'close')
  }

  #slowConsumer (): void {
    const counters = this.#ctx.counters
    if (this.#ctx.options.slowConsumer === 'drop') {
      counters.deliveriesDropped++
      return
    }
    counters.slowConsumersClosed++
    this.#log.info({ bufferedAmount: this.#socket.bufferedAmount }, 'fastify-realtime: slow consumer, closing with 1013')
    this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer')
  }

  #error (code: WireErrorCode, message: string, id?: RequestId, details?: ErrorFrame['details']): void {
    this.send(JSON.stringify(errorFrame(code, message, id, details)))
  }

  #onMessage (data: RawData, isBinary: boolean): void {
    if (this.#closed) return
    if (isBinary) {
      this.close(CloseCode.UNSUPPORTED_DATA, 'binary frames are not supported')
      return
    }
    const buf = data as Buffer
    if (buf.length > this.#ctx.options.maxPayload) {
      // Only reachable when the app registered @fastify/websocket itself with a larger maxPayload.
      this.close(CloseCode.MESSAGE_TOO_BIG, 'frame too large')
      return
    }
    const text = buf.toString()
    const limiter = this.#ctx.options.limiter
    if (limiter === undefined) {
      this.#handle(text)
      return
    }
    // Verdicts resolve in call order, so accepted frames keep their order.
    limiter.check(this.#limitKey).then((verdict) => {
      if (this.#socket.readyState !== WS_OPEN) return
      if (verdict === Verdict.ACCEPT) this.#handle(text)
      else if (verdict === Verdict.REJECT) this.#rateLimited(text)
      else this.#flooded()
    }, /* c8 ignore next */ (err: unknown) => this.#log.error({ err }, 'fastify-realtime: rate limiter failed'))
  }

  #rateLimited (text: string): void {
    this.#ctx.counters.framesRateLimited++
    const parsed = parseClientFrame(text, this.#ctx.options.maxDepth)
    this.#error('RATE_LIMITED', 'Too many frames, slow down', parsed.ok ? parsed.frame.id : parsed.error.id)
  }

  #flooded (): void {
    this.#ctx.counters.floodsClosed++
    this.#log.info('fastify-realtime: flooding past twice the rate limit, closing with 1008')
    this.close(CloseCode.POLICY_VIOLATION, 'rate limit exceeded')
  }

  #handle (text: string): void {
    const result = parseClientFrame(text, this.#ctx.options.maxDepth)
    if (!result.ok) {
      this.send(JSON.stringify(result.error))
      return
    }
    const frame = result.frame
    if (this.#queued === 0) {
      const pending = this.#guard(frame)
      if (pending !== undefined) this.#track(pending, frame)
      return
    }
    this.#track(this.#queue.then(() => this.#closed ? undefined : this.#guard(frame)), frame)
  }

  /** Runs one frame; a synchronous throw becomes an INTERNAL reply. */
  #guard (frame: ClientFrame): Promise<void> | undefined {
    try {
      return this.#perform(frame)
    } catch (err) {
      this.#internal(err, frame.id)
      return undefined
    }
  }

  #perform (frame: ClientFrame): Promise<void> | undefined {
    if (frame.type === 'join') return this.#join(frame.channel, frame.id)
    if (frame.type === 'leave') {
      this.#leave(frame.channel, frame.id)
      return undefined
    }
    return this.#action(frame)
  }

  #track (pending: Promise<void>, frame: ClientFrame): void {
    this.#queued++
    this.#queue = pending.catch((err: unknown) => this.#internal(err, frame.id)).finally(() => { this.#queued-- })
  }

  #internal (err: unknown, id: RequestId | undefined): void {
    this.#log.error({ err }, 'fastify-realtime: frame handler failed')
    this.#error('INTERNAL', 'Internal error', id)
  }

  async #join (channel: string, id: RequestId | undefined): Promise<void> {
    if (this.channels.has(channel)) {
      this.send(membershipFrame('joined', channel, id))
      return
    }
    const { maxChannelsPerConnection, authorizeJoin } = this.#ctx.options
    if (this.channels.size + this.#joining >= maxChannelsPerConnection) {
      this.#error('LIMIT_EXCEEDED', `At most ${maxChannelsPerConnection} channels per connection`, id)
      return
    }
    this.#joining++
    try {
      if (authorizeJoin !== undefined && !(await this.#authorized(() => authorizeJoin(this, channel), id))) return
      const topic = CHANNEL_TOPIC_PREFIX + channel
      try {
        await this.#ctx.registry.add(topic, this)
      } catch (err) {
        this.#log.warn({ err, channel }, 'fastify-realtime: join failed, adapter did not subscribe')
        this.#error('UNAVAILABLE', 'Could not subscribe to the channel, retry later', id)
        return
      }
      if (this.#closed) {
        this.#ctx.registry.remove(topic, this)
        return
      }
      this.channels.add(channel)
      this.send(membershipFrame('joined', channel, id))
    } finally {
      this.#joining--
    }
  }

  /** Awaits an authorization hook: `true` passes; anything else answers FORBIDDEN, a throw INTERNAL. */
  async #authorized (hook: () => boolean | Promise<boolean>, id: RequestId | undefined): Promise<boolean> {
    let allowed: boolean
    try {
      allowed = (await hook()) === true
    } catch (err) {
      this.#internal(err, id)
      return false
    }
    if (!allowed) this.#error('FORBIDDEN', 'Not allowed', id)
    return allowed
  }

  #leave (channel: string, id: RequestId | undefined): void {
    // Always succeeds locally; the adapter reconciles its subscription (now, or when the backend is back).
    if (this.channels.delete(channel)) this.#ctx.registry.remove(CHANNEL_TOPIC_PREFIX + channel, this)
    this.send(membershipFrame('left', channel, id))
  }

  /**
   * Validates and publishes an action. Synchronous up to `adapter.publish` unless `authorizePublish` returns a
   * promise; the caller then queues later frames behind the returned promise, so publish order is frame order.
   */
  #action (frame: ActionFrame): Promise<void> | undefined {
    const { channel, action, payload, id } = frame
    const validator = this.#ctx.options.actions.get(action)
    if (validator === undefined) {
      this.#error('UNKNOWN_ACTION', `Unknown action "${action}"`, id)
      return undefined
    }
    if (!this.channels.has(channel)) {
      this.#error('NOT_JOINED', `Join "${channel}" before publishing to it`, id)
      return undefined
    }
    const details = payloadErrors(validator, payload)
    if (details !== undefined) {
      this.#error('VALIDATION_FAILED', `Payload of "${action}" is invalid`, id, details)
      return undefined
    }
    const authorizePublish = this.#ctx.options.authorizePublish
    if (authorizePublish === undefined) {
      this.#publish(frame)
      return undefined
    }
    const verdict = authorizePublish(this, channel, action)
    if (verdict === true) {
      this.#publish(frame)
      return undefined
    }
    return this.#authorized(() => verdict, id).then((allowed) => {
      if (allowed) this.#publish(frame)
    })
  }

  #publish ({ channel, action, payload, id }: ActionFrame): void {
    const inflight = this.#ctx.inflight
    inflight.start()
    this.#ctx.adapter.publish(CHANNEL_TOPIC_PREFIX + channel, messageFrame(channel, action, payload, this.deviceId)).then(() => {
      if (id !== undefined) this.send(ackFrame(id))
      inflight.end()
    }, (err: unknown) => {
      this.#log.warn({ err, channel }, 'fastify-realtime: adapter publish failed, answered UNAVAILABLE')
      this.#error('UNAVAILABLE', 'The message was not delivered, retry later', id)
      inflight.end()
    })
  }

  #onClose (): void {
    this.#closed = true
    const { registry, connections } = this.#ctx
    connections.delete(this)
    for (const channel of this.channels) registry.remove(CHANNEL_TOPIC_PREFIX + channel, this)
    this.channels.clear()
    registry.remove(this.#deviceTopic, this)
  }
}
