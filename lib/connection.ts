/**
 * One WebSocket connection: parses and validates client frames, dispatches join / leave / action, sends
 * replies and deliveries, answers the heartbeat, and leaves every channel when the socket closes.
 */
import { once } from 'node:events'
import type { WebSocket, RawData } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import type { Validator } from 'typebox/compile'
import type { ChannelRegistry, Member } from './channels.js'
import type { RealtimeAdapter } from './adapters/adapter.js'
import { CHANNEL_TOPIC_PREFIX, CloseCode, DEVICE_TOPIC_PREFIX } from './constants.js'
import {
  type ActionFrame, type ErrorFrame, type RequestId, type WireErrorCode,
  ackFrame, errorFrame, membershipFrame, messageFrame, parseClientFrame, toDetails, welcomeFrame
} from './protocol.js'

/** The view of a connection given to `authorizeJoin` and other hooks. */
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
  actions: ReadonlyMap<string, Validator>
  authorizeJoin: ((connection: RealtimeConnection, channel: string) => boolean | Promise<boolean>) | undefined
  maxChannelsPerConnection: number
  maxPayload: number
  maxDepth: number
  log: FastifyBaseLogger
  connections: Set<Connection>
}

const WS_OPEN = 1
const TEXT = { binary: false }

export class Connection implements Member, RealtimeConnection {
  readonly deviceId: string
  readonly auth: unknown
  readonly channels = new Set<string>()
  /** Cleared by each heartbeat tick, set again by the pong. */
  alive = true
  #closed = false
  /** Joins and leaves run one at a time, in order; while any is queued, actions queue behind it. */
  #queue: Promise<void> = Promise.resolve()
  #queued = 0
  #joining = 0
  readonly #socket: WebSocket
  readonly #ctx: ConnectionContext
  readonly #log: FastifyBaseLogger
  readonly #deviceTopic: string

  constructor (ctx: ConnectionContext, socket: WebSocket, deviceId: string, auth: unknown) {
    this.#ctx = ctx
    this.#socket = socket
    this.deviceId = deviceId
    this.auth = auth
    this.#deviceTopic = DEVICE_TOPIC_PREFIX + deviceId
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
      this.#log.error({ err }, 'fastify-realtime: could not subscribe to direct messages')
      this.close(CloseCode.INTERNAL_ERROR, 'adapter unavailable')
    })
  }

  /** Writes a delivery frame. Called once per member per message: no allocation here. */
  deliver (frame: Buffer): void {
    if (this.#socket.readyState === WS_OPEN) this.#socket.send(frame, TEXT)
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

  #reply (error: ErrorFrame): void {
    this.send(JSON.stringify(error))
  }

  #error (code: WireErrorCode, message: string, id?: RequestId, details?: ErrorFrame['details']): void {
    this.#reply(errorFrame(code, message, id, details))
  }

  #onMessage (data: RawData, isBinary: boolean): void {
    if (this.#closed) return
    if (isBinary) {
      this.close(CloseCode.UNSUPPORTED_DATA, 'binary frames are not supported')
      return
    }
    const buf = data as Buffer
    if (buf.length > this.#ctx.maxPayload) {
      // Only reachable when the app registered @fastify/websocket itself with a larger maxPayload.
      this.close(CloseCode.MESSAGE_TOO_BIG, 'frame too large')
      return
    }
    const result = parseClientFrame(buf.toString(), this.#ctx.maxDepth)
    if (!result.ok) {
      this.#reply(result.error)
      return
    }
    const frame = result.frame
    if (frame.type === 'action' && this.#queued === 0) {
      this.#action(frame)
      return
    }
    this.#queued++
    this.#queue = this.#queue.then(() => {
      if (this.#closed) return
      if (frame.type === 'join') return this.#join(frame.channel, frame.id)
      if (frame.type === 'leave') return this.#leave(frame.channel, frame.id)
      this.#action(frame)
    }).catch((err: unknown) => {
      this.#log.error({ err }, 'fastify-realtime: frame handler failed')
      this.#error('INTERNAL', 'Internal error', frame.id)
    }).finally(() => { this.#queued-- })
  }

  async #join (channel: string, id: RequestId | undefined): Promise<void> {
    if (this.channels.has(channel)) {
      this.send(membershipFrame('joined', channel, id))
      return
    }
    if (this.channels.size + this.#joining >= this.#ctx.maxChannelsPerConnection) {
      this.#error('LIMIT_EXCEEDED', `At most ${this.#ctx.maxChannelsPerConnection} channels per connection`, id)
      return
    }
    this.#joining++
    try {
      if (this.#ctx.authorizeJoin !== undefined) {
        let allowed: boolean
        try {
          allowed = (await this.#ctx.authorizeJoin(this, channel)) === true
        } catch (err) {
          this.#log.error({ err, channel }, 'fastify-realtime: authorizeJoin threw, join refused')
          this.#error('INTERNAL', 'Internal error', id)
          return
        }
        if (!allowed) {
          this.#error('FORBIDDEN', `Not allowed to join "${channel}"`, id)
          return
        }
      }
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

  #leave (channel: string, id: RequestId | undefined): void {
    if (this.channels.delete(channel)) this.#ctx.registry.remove(CHANNEL_TOPIC_PREFIX + channel, this)
    this.send(membershipFrame('left', channel, id))
  }

  /** Validates and publishes an action. Synchronous up to `adapter.publish`, so publish order is frame order. */
  #action (frame: ActionFrame): void {
    const { channel, action, payload, id } = frame
    const validator = this.#ctx.actions.get(action)
    if (validator === undefined) {
      this.#error('UNKNOWN_ACTION', `Unknown action "${action}"`, id)
      return
    }
    if (!this.channels.has(channel)) {
      this.#error('NOT_JOINED', `Join "${channel}" before publishing to it`, id)
      return
    }
    if (!validator.Check(payload)) {
      this.#error('VALIDATION_FAILED', `Payload of "${action}" is invalid`, id, toDetails(validator.Errors(payload), '/payload'))
      return
    }
    const message = messageFrame(channel, action, payload, this.deviceId)
    this.#ctx.adapter.publish(CHANNEL_TOPIC_PREFIX + channel, message).then(() => {
      if (id !== undefined) this.send(ackFrame(id))
    }, (err: unknown) => {
      this.#log.warn({ err, channel }, 'fastify-realtime: adapter publish failed')
      this.#error('UNAVAILABLE', 'The message was not delivered, retry later', id)
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
