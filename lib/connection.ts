/**
 * One WebSocket connection's lifecycle: open (direct-message subscription, welcome), deliveries with the
 * slow-consumer bound, heartbeat, and close (leaves every channel). Inbound frames (binary and size checks, rate
 * limit) live in `inbound.ts`, their handling in `dispatch.ts`, channel membership in `membership.ts`.
 */
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { Socket } from 'node:net'
import type { WebSocket, RawData } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import type { ConnectionContext, RealtimeConnection } from './connection-types.js'
import { serverMessage } from './actions.js'
import type { Member } from './channels.js'
import { applyControl } from './control.js'
import type { ControlCommand } from './envelope.js'
import { FST_REALTIME_INVALID_CHANNEL } from './errors.js'
import { CloseCode, DEVICE_TOPIC_PREFIX } from './constants.js'
import { deflateWindowBits } from './deflate.js'
import { SETTLED } from './dispatch.js'
import { writeCorked } from './frame.js'
import { runHook } from './hooks.js'
import { receive } from './inbound.js'
import { leaveAll, serverJoin, serverLeave } from './membership.js'
import {
  type RequestId, type ValidationDetail, type WireErrorCode, errorFrame, isChannelName, welcomeFrame
} from './protocol.js'

export type { ConnectionContext, RealtimeConnection } from './connection-types.js'

const WS_OPEN = 1
const TEXT = { binary: false }
/** ws must never compress on its own: with the extension negotiated, frames are built here (see `#deflateBits`). */
const UNCOMPRESSED = { compress: false }
let serial = 0
/** The socket's back-reference to its Connection, read by the shared listeners below. */
const kConnection = Symbol('fastify-realtime.connection')
type OwnedSocket = WebSocket & { [kConnection]: Connection }

function onMessage (this: WebSocket, data: RawData, isBinary: boolean): void {
  receive((this as OwnedSocket)[kConnection], data, isBinary)
}

function onPong (this: WebSocket): void {
  (this as OwnedSocket)[kConnection].ponged()
}

function onClose (this: WebSocket, code: number, reason: Buffer): void {
  (this as OwnedSocket)[kConnection].onClose(code, reason)
}

/** The Connection of a socket it owns, `undefined` for any other socket. */
export function connectionOf (socket: WebSocket): Connection | undefined {
  return (socket as Partial<OwnedSocket>)[kConnection]
}

/**
 * One client's WebSocket lifecycle: the welcome, frames in (rate limit, then dispatch in order), deliveries out
 * (backpressure over `maxBufferedBytes` closes 1013), heartbeat, and cleanup on close.
 */
export class Connection implements Member, RealtimeConnection {
  readonly deviceId: string
  readonly auth: unknown
  readonly channels = new Set<string>()
  readonly ctx: ConnectionContext
  /**
   * The TCP socket's `bytesRead` at the last heartbeat tick (-1: alive, no tick yet or a pong of an injected socket).
   * Read instead of a `pong` listener: a fourth event name on the WebSocket grows its listener table (~0.1 KiB).
   */
  #readAtTick = -1
  /** Set once the socket has closed. */
  closed = false
  /** The tail of this connection's pending frames (see dispatch.ts); `queued` counts them. */
  queue: Promise<void> = SETTLED
  queued = 0
  /** Joins under way (counted against `maxChannelsPerConnection`). */
  joining = 0
  /** The tail of this connection's pending async hooks (see hooks.ts), `undefined` when none is pending. */
  hooks: Promise<void> | undefined
  readonly #socket: WebSocket
  readonly #deviceTopic: string
  /** The logger child with this deviceId, created on first use (most connections never log). */
  #log: FastifyBaseLogger | undefined
  /** `id`, made on first read: a UUID string costs ~0.5 KiB until flattened, and most connections never need it. */
  #id: string | undefined
  /** This connection's rate-limit key when budgets are per connection (a number: no string kept per connection). */
  readonly serial = ++serial
  /**
   * The stream under ws (the TCP socket; an in-memory Duplex for an injected socket), for writing prebuilt frames;
   * undefined for a socket without one (then ws.send() is used).
   */
  readonly #raw: Socket | undefined
  /**
   * 0 without permessage-deflate; else the window bits negotiated (deflate.ts): every text frame this plugin sends on
   * the socket is then framed here (compressed from the threshold), never by ws's per-socket compressor.
   */
  readonly #deflateBits: number
  /** `metrics.now()` at open, for `connection_duration_seconds`. */
  readonly #openedAt: number

  /** `channels`: joined server-side right after the welcome (from `authenticate`), before `onConnect`. */
  constructor (ctx: ConnectionContext, socket: WebSocket, deviceId: string, auth: unknown, channels: readonly string[] = []) {
    this.ctx = ctx
    this.#socket = socket
    this.deviceId = deviceId
    this.auth = auth
    this.#deviceTopic = DEVICE_TOPIC_PREFIX + deviceId
    this.#raw = (socket as unknown as { _socket: Socket | undefined })._socket
    this.#deflateBits = this.#raw === undefined || socket.extensions === '' ? 0 : deflateWindowBits(socket)
    ctx.connections.add(this)
    ctx.metrics.connectionOpened()
    this.#openedAt = ctx.metrics.now()
    // Shared listeners (`this` is the socket), no closure per connection: the socket points back here.
    ;(socket as OwnedSocket)[kConnection] = this
    socket.on('message', onMessage)
    // An injected socket (app.injectWS) has no TCP socket to read `bytesRead` from: its pongs are counted instead.
    if (!(this.#raw instanceof Socket)) socket.on('pong', onPong)
    socket.on('close', onClose)
    // Subscribe to direct messages before the welcome, so a sendToDevice() made after it arrives. The plugin corked
    // the socket before ws wrote the 101: uncorked once the welcome is written, or when the subscription fails.
    const corked = this.#raw !== undefined && this.#raw.writableCorked > 0
    ctx.registry.add(this.#deviceTopic, this).then(() => this.#open(channels, corked), (err: unknown) => {
      if (corked) this.#raw!.uncork()
      this.log.warn({ err }, 'fastify-realtime: could not subscribe to direct messages, closing with 1013')
      this.close(CloseCode.TRY_AGAIN_LATER, 'adapter unavailable')
    })
  }

  /** Whether the socket is open (frames sent now reach the peer). */
  get open (): boolean {
    return this.#socket.readyState === WS_OPEN
  }

  /** Unique per connection (a UUID), also across nodes and reconnects. */
  get id (): string {
    this.#id ??= randomUUID()
    return this.#id
  }

  /** This connection's logger: the plugin's, with the deviceId bound (created on first use). */
  get log (): FastifyBaseLogger {
    this.#log ??= this.ctx.log.child({ deviceId: this.deviceId })
    return this.#log
  }

  /** Once subscribed to direct messages: the welcome (`corked`: with the 101, plugin.ts), `authenticate`'s channels, `onConnect`. */
  #open (channels: readonly string[], corked: boolean): void {
    if (this.closed) {
      // Closed meanwhile (e.g. shutdown): the 101 and the close frame are still held; let them go.
      if (corked) this.#raw!.uncork()
      this.ctx.registry.remove(this.#deviceTopic, this)
      return
    }
    this.sendFrame(welcomeFrame(this.deviceId))
    if (corked) this.#raw!.uncork() // the 101 and the welcome leave together
    if (channels.length === 0) {
      this.#connected()
      return
    }
    Promise.all(channels.map((channel) => serverJoin(this, channel))).then(() => this.#connected(), (err: unknown) => {
      this.log.warn({ err }, 'fastify-realtime: could not join the channels from authenticate, closing with 1013')
      this.close(CloseCode.TRY_AGAIN_LATER, 'adapter unavailable')
    })
  }

  /**
   * Writes a delivery: the prebuilt frame, the same Buffer for every member, straight to the TCP socket (corked
   * for the tick). Called once per member per message, so it allocates nothing itself. Over `maxBufferedBytes`
   * of unsent data the connection is a slow consumer. Returns whether the frame was written (false: the socket is
   * not open, or it is a slow consumer), so the fan-out counts the members reached without a second pass.
   */
  deliver (payload: Buffer, frame: Buffer): boolean {
    const socket = this.#socket
    if (socket.readyState !== WS_OPEN) return false
    if (socket.bufferedAmount > this.ctx.options.maxBufferedBytes) {
      this.#slowConsumer()
      return false
    }
    if (this.#raw === undefined) socket.send(payload, TEXT)
    else writeCorked(this.#raw, this.#deflateBits === 0 ? frame : this.ctx.deflater.frameFor(payload, frame, this.#deflateBits))
    return true
  }

  send (action: string, payload: unknown): void {
    this.sendFrame(serverMessage(this.ctx.options.actions, undefined, action, payload))
  }

  async join (channel: string): Promise<void> {
    if (!isChannelName(channel)) throw new FST_REALTIME_INVALID_CHANNEL(String(channel))
    await serverJoin(this, channel)
  }

  async leave (channel: string): Promise<void> {
    if (!isChannelName(channel)) throw new FST_REALTIME_INVALID_CHANNEL(String(channel))
    serverLeave(this, channel)
  }

  /** Applies a control command received on this connection's device topic (control.ts). */
  control (command: ControlCommand): void {
    applyControl(this, command)
  }

  /** Sends one serialised server frame to this socket (dropped when it is not open). */
  sendFrame (text: string): void {
    if (this.#socket.readyState !== WS_OPEN) return
    if (this.#deflateBits === 0) this.#socket.send(text, UNCOMPRESSED)
    else writeCorked(this.#raw!, this.ctx.deflater.frameOf(Buffer.from(text), this.#deflateBits))
    this.ctx.metrics.frameSent(text)
  }

  /** Sends an `error` reply: a wire code, or an application code from `RealtimeError` (any JSON `details`). */
  error (code: WireErrorCode | (string & {}), message: string, id?: RequestId, details?: ValidationDetail[] | unknown): void {
    this.sendFrame(JSON.stringify(errorFrame(code, message, id, details)))
    this.ctx.metrics.error(code)
  }

  /** Logs an unexpected failure and answers `INTERNAL`, never echoing its message. */
  internal (err: unknown, id: RequestId | undefined): void {
    this.log.error({ err }, 'fastify-realtime: frame handler failed')
    this.error('INTERNAL', 'Internal error', id)
  }

  close (code: number = CloseCode.NORMAL, reason = ''): void {
    // close() (not terminate()) so the close frame is queued behind pending output and the code reaches the peer;
    // ws destroys the socket if the handshake does not finish within closeTimeout.
    if (this.#socket.readyState <= WS_OPEN) this.#socket.close(code, reason)
  }

  /**
   * One heartbeat tick: terminates the connection if the peer sent nothing since the previous tick's ping (no pong,
   * no frame: the TCP socket's `bytesRead` did not move), else pings again.
   */
  heartbeat (): void {
    const read = this.#raw instanceof Socket ? this.#raw.bytesRead : 0
    if (read === this.#readAtTick) {
      this.log.debug('fastify-realtime: heartbeat missed, terminating')
      this.#socket.terminate()
      return
    }
    this.#readAtTick = read
    if (this.#socket.readyState === WS_OPEN) this.#socket.ping()
  }

  /** A pong on an injected socket (TCP sockets are read through `bytesRead`, see `heartbeat`). */
  ponged (): void {
    this.#readAtTick = -1
  }

  /** Resolves when the socket has closed and its hooks (`onLeave`, `onDisconnect`) have settled. */
  async whenClosed (): Promise<void> {
    if (!this.closed) await once(this.#socket, 'close')
    await this.hooks
  }

  #connected (): void {
    const onConnect = this.ctx.options.onConnect
    if (onConnect !== undefined && !this.closed) runHook(this, 'onConnect', () => onConnect(this))
  }

  #slowConsumer (): void {
    const counters = this.ctx.counters
    if (this.ctx.options.slowConsumer === 'drop') {
      counters.deliveriesDropped++
      return
    }
    counters.slowConsumersClosed++
    this.log.info({ bufferedAmount: this.#socket.bufferedAmount }, 'fastify-realtime: slow consumer, closing with 1013')
    this.close(CloseCode.TRY_AGAIN_LATER, 'slow consumer')
  }

  /** The socket's `close` event (once). */
  onClose (code: number, reason: Buffer): void {
    this.closed = true
    const { registry, connections, options } = this.ctx
    connections.delete(this)
    this.ctx.metrics.connectionClosed(code, this.#openedAt)
    leaveAll(this)
    registry.remove(this.#deviceTopic, this)
    const onDisconnect = options.onDisconnect
    if (onDisconnect !== undefined) {
      const close = { code, reason: reason.toString() }
      runHook(this, 'onDisconnect', () => onDisconnect(this, close))
    }
  }
}
