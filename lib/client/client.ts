/**
 * `RealtimeClient`: one logical connection to a fastify-realtime endpoint that survives reconnects. It keeps
 * the deviceId, re-joins its channels and then sends the calls queued while disconnected; lifecycle events go
 * through `EventTarget`, deliveries through `on()` / `onDirect()`.
 */
import type { TSchema } from 'typebox'
import { CloseCode } from '../constants.js'
import type { ErrorFrame, MessageFrame, ServerFrame } from '../protocol.js'
import { backoffDelay } from './backoff.js'
import { endpointUrl, withDeviceId } from './endpoint.js'
import { RealtimeError } from './errors.js'
import { Handlers } from './handlers.js'
import { type ClientOptions, type ResolvedClientOptions, resolveClientOptions } from './options.js'
import { type PendingRequest, Requests } from './requests.js'
import { OPEN, type SocketLike, type WebSocketConstructor, loadWebSocket, refusedStatus } from './socket.js'
import type {
  ActionName, ActionPayload, ClientActionMap, ClientState, DirectMessageHandler, Listener, ListenerOptions,
  MessageHandler, RealtimeClientEventMap
} from './types.js'

/** Close codes after which retrying cannot help: the client closes for good. */
const TERMINAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CloseCode.UNSUPPORTED_DATA, CloseCode.POLICY_VIOLATION, CloseCode.MESSAGE_TOO_BIG
])
/** HTTP statuses answering the upgrade after which the client closes for good (seen in Node only). */
const TERMINAL_HTTP_STATUSES: ReadonlySet<number> = new Set([401, 403])
/** Close code reported when a socket ended without a close frame. */
const ABNORMAL_CLOSURE = 1006

/**
 * A realtime client typed by the server's action map `A` (`createClient<typeof actions>(url)`).
 * Create it with `createClient`; it connects at once.
 */
export class RealtimeClient<A extends { [K in keyof A]: TSchema } = ClientActionMap> extends EventTarget {
  /** The normalised endpoint URL (without the deviceId query parameter the client adds). */
  readonly url: string
  readonly #options: ResolvedClientOptions
  readonly #requests: Requests
  readonly #channels = new Set<string>()
  readonly #handlers = new Handlers()
  #deviceId: string | undefined
  #state: ClientState = 'connecting'
  #socket: SocketLike | undefined
  #WebSocket: WebSocketConstructor | undefined
  /** HTTP status that refused the current attempt's upgrade, when known. */
  #refused: number | undefined
  #attempt = 0
  #welcomed = false
  /** The reconnect delay. */
  #timer: ReturnType<typeof setTimeout> | undefined
  /** The connect timeout of the current attempt. */
  #connectTimer: ReturnType<typeof setTimeout> | undefined
  #closed: Promise<void> | undefined
  #resolveClosed: (() => void) | undefined

  /** Prefer `createClient()`. @throws TypeError for an invalid url or option. */
  constructor (url: string | URL, options: ClientOptions = {}) {
    super()
    this.#options = resolveClientOptions(options)
    this.url = endpointUrl(url)
    this.#deviceId = this.#options.deviceId
    this.#requests = new Requests(this.#options.requestTimeout, this.#options.queueSize)
    this.#connect()
  }

  /** The deviceId: the one given, else the one the server assigned in its first `welcome` (`undefined` before). */
  get deviceId (): string | undefined {
    return this.#deviceId
  }

  /** The connection state: `connecting`, `open`, `reconnecting` or `closed` (see `ClientState`). */
  get state (): ClientState {
    return this.#state
  }

  /** The channels joined (a copy). They stay listed while disconnected: the client re-joins them on reconnect. */
  get channels (): ReadonlySet<string> {
    return new Set(this.#channels)
  }

  /**
   * Joins `channel`. Resolves on the server's `joined` (also when already joined).
   * @throws (as a rejection) RealtimeError `FORBIDDEN`, `LIMIT_EXCEEDED`, `UNAVAILABLE`, `BAD_REQUEST` (invalid
   *   name), `RATE_LIMITED`, `TIMEOUT`, `QUEUE_FULL`, `CLOSED`
   */
  join (channel: string): Promise<void> {
    return this.#request({ type: 'join', channel })
  }

  /**
   * Leaves `channel`. Resolves on the server's `left` (also when not joined); the channel is not re-joined anymore.
   * @throws (as a rejection) RealtimeError `BAD_REQUEST`, `RATE_LIMITED`, `TIMEOUT`, `QUEUE_FULL`, `CLOSED`
   */
  leave (channel: string): Promise<void> {
    return this.#request({ type: 'leave', channel })
  }

  /**
   * Publishes `action` with `payload` to every member of `channel` (the sender included, if it handles it).
   * Resolves on the server's `ack`, once the server's pub/sub accepted the message.
   * @throws (as a rejection) RealtimeError `VALIDATION_FAILED` (with `details`), `UNKNOWN_ACTION`, `NOT_JOINED`,
   *   `UNAVAILABLE` (not delivered, safe to retry), `BAD_REQUEST`, `RATE_LIMITED`, `TIMEOUT`, `QUEUE_FULL`,
   *   `DISCONNECTED` (dropped before the ack: maybe delivered), `CLOSED`
   */
  publish<K extends ActionName<A>> (channel: string, action: K, payload: ActionPayload<A, K>): Promise<void> {
    return this.#request({ type: 'action', channel, action, payload })
  }

  /**
   * Calls `handler(payload, { channel, action, from })` for each `action` delivered on `channel`.
   * Subscribing does not join: call `join(channel)` too.
   * @returns a function that removes this handler
   */
  on<K extends ActionName<A>> (channel: string, action: K, handler: MessageHandler<ActionPayload<A, K>, K>): () => void {
    return this.#handlers.add(channel, action, handler)
  }

  /**
   * Calls `handler(payload, { channel: undefined, action, from })` for each direct message `action` sent to this
   * deviceId (`fastify.realtime.sendToDevice`).
   * @returns a function that removes this handler
   */
  onDirect<K extends ActionName<A>> (action: K, handler: DirectMessageHandler<ActionPayload<A, K>, K>): () => void {
    return this.#handlers.add(undefined, action, handler)
  }

  /**
   * Closes the connection with code 1000 and stops reconnecting. Pending and queued calls reject with `CLOSED`.
   * Resolves once the socket has closed (and the `close` event was dispatched). Idempotent.
   */
  close (): Promise<void> {
    if (this.#closed !== undefined) return this.#closed
    this.#closed = new Promise((resolve) => { this.#resolveClosed = resolve })
    const socket = this.#socket
    this.#shutdown(new RealtimeError('CLOSED', 'The client was closed'))
    if (socket !== undefined) socket.close(CloseCode.NORMAL)
    else this.#finish(CloseCode.NORMAL, 'client closed')
    return this.#closed
  }

  /** Adds a lifecycle listener: `open`, `close`, `reconnecting` or `error` (see `RealtimeClientEventMap`). */
  override addEventListener<K extends keyof RealtimeClientEventMap> (type: K, listener: Listener<RealtimeClientEventMap[K]> | null, options?: ListenerOptions): void
  override addEventListener (type: string, listener: Listener<Event> | null, options?: ListenerOptions): void
  override addEventListener (type: string, listener: any, options?: ListenerOptions): void {
    super.addEventListener(type, listener, options)
  }

  /** Removes a listener added with `addEventListener`. */
  override removeEventListener<K extends keyof RealtimeClientEventMap> (type: K, listener: Listener<RealtimeClientEventMap[K]> | null, options?: boolean | { capture?: boolean }): void
  override removeEventListener (type: string, listener: Listener<Event> | null, options?: boolean | { capture?: boolean }): void
  override removeEventListener (type: string, listener: any, options?: boolean | { capture?: boolean }): void {
    super.removeEventListener(type, listener, options)
  }

  #connect (): void {
    this.#state = 'connecting'
    this.#refused = undefined
    const ctor = this.#WebSocket ?? loadWebSocket(this.#options.WebSocket)
    if (typeof ctor === 'function') {
      this.#open(ctor)
      return
    }
    ctor.then((loaded) => {
      this.#WebSocket = loaded
      if (this.#state === 'connecting') this.#open(loaded)
    }, (err: unknown) => {
      if (this.#state === 'closed') return
      this.#emitError(new RealtimeError('CONNECTION_FAILED', (err as Error).message, { cause: err }))
      this.#shutdown(new RealtimeError('CLOSED', 'No WebSocket implementation'))
      this.#finish(ABNORMAL_CLOSURE, 'no WebSocket implementation')
    })
  }

  #open (Ctor: WebSocketConstructor): void {
    this.#WebSocket = Ctor
    let socket: SocketLike
    try {
      socket = new Ctor(withDeviceId(this.url, this.#deviceId))
    } catch (err) { // e.g. a browser's SecurityError: report it, retry with backoff
      this.#emitError(new RealtimeError('CONNECTION_FAILED', (err as Error).message, { cause: err }))
      this.#onClose(ABNORMAL_CLOSURE, 'the WebSocket could not be created')
      return
    }
    this.#socket = socket
    socket.addEventListener('message', (event: { data: unknown }) => {
      if (this.#socket === socket && this.#state !== 'closed') this.#onFrame(event.data)
    })
    socket.addEventListener('error', (event: unknown) => {
      if (this.#socket !== socket || this.#state === 'closed') return
      const status = refusedStatus(event)
      if (status !== undefined) this.#refused = status
      const message = status === undefined ? 'WebSocket error' : `The server answered the upgrade with HTTP ${status}`
      this.#emitError(new RealtimeError('CONNECTION_FAILED', message, { status, cause: event }))
    })
    socket.addEventListener('close', (event: { code: number, reason: string }) => {
      if (this.#socket === socket) this.#onClose(event.code, event.reason)
    })
    this.#connectTimer = setTimeout(() => {
      if (this.#socket !== socket || this.#state !== 'connecting') return
      // Abandon the socket: a peer that never answered may never finish a close handshake either.
      this.#onClose(ABNORMAL_CLOSURE, `no welcome within ${this.#options.connectTimeout} ms`)
      socket.close()
    }, this.#options.connectTimeout)
  }

  #onFrame (data: unknown): void {
    let frame: ServerFrame
    try {
      frame = JSON.parse(data as string) as ServerFrame
      if (frame === null || typeof frame !== 'object') throw new TypeError('not an object')
    } catch (err) {
      this.#emitError(new RealtimeError('BAD_FRAME', 'The server sent a frame that is not a JSON object', { cause: err }))
      return
    }
    switch (frame.type) {
      case 'welcome': return this.#onWelcome(frame.deviceId)
      case 'joined':
        this.#channels.add(frame.channel)
        this.#requests.reply(frame.id)
        return
      case 'left':
        this.#channels.delete(frame.channel)
        this.#requests.reply(frame.id)
        return
      case 'ack':
        this.#requests.reply(frame.id)
        return
      case 'error': return this.#onErrorFrame(frame)
      case 'message': return this.#deliver(frame)
      default:
        this.#emitError(new RealtimeError('BAD_FRAME', `Unknown frame type ${JSON.stringify((frame as { type?: unknown }).type)}`))
    }
  }

  #onWelcome (deviceId: string): void {
    clearTimeout(this.#connectTimer)
    const reconnected = this.#welcomed
    this.#welcomed = true
    this.#deviceId = deviceId
    this.#attempt = 0
    this.#state = 'open'
    // Re-join first: the server handles joins in order and holds actions behind a pending join.
    for (const channel of this.#channels) this.#rejoin(channel)
    for (const request of this.#requests.drain()) this.#write(request)
    this.#dispatch('open', { deviceId, reconnected })
  }

  #onErrorFrame (frame: ErrorFrame): void {
    const error = new RealtimeError(frame.code, frame.message, { details: frame.details, id: frame.id })
    if (!this.#requests.reply(frame.id, error)) this.#emitError(error)
  }

  #deliver (frame: MessageFrame): void {
    this.#handlers.deliver(frame, (err) => {
      this.#emitError(new RealtimeError('HANDLER_FAILED', `A handler of "${frame.action}" threw`, { cause: err }))
    })
  }

  #onClose (code: number, reason: string): void {
    clearTimeout(this.#connectTimer)
    this.#socket = undefined
    this.#requests.disconnected()
    if (this.#state === 'closed') { // close() was called
      this.#finish(code, reason)
      return
    }
    const refused = this.#refused
    if (TERMINAL_CLOSE_CODES.has(code) || (refused !== undefined && TERMINAL_HTTP_STATUSES.has(refused))) {
      const why = refused === undefined ? `${code}${reason === '' ? '' : ` ${reason}`}` : `HTTP ${refused}`
      this.#shutdown(new RealtimeError('CLOSED', `The server ended the connection (${why}); the client will not reconnect`))
      this.#finish(code, reason === '' && refused !== undefined ? `HTTP ${refused}` : reason)
      return
    }
    this.#attempt++
    const delay = backoffDelay(this.#attempt, this.#options.minDelay, this.#options.maxDelay)
    this.#state = 'reconnecting'
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#connect()
    }, delay)
    this.#dispatch('close', { code, reason, willReconnect: true })
    if (this.#state === 'reconnecting') this.#dispatch('reconnecting', { attempt: this.#attempt, delay })
  }

  /** Enters the terminal state: no reconnect, every call rejected with `error`. */
  #shutdown (error: RealtimeError): void {
    this.#state = 'closed'
    clearTimeout(this.#timer)
    clearTimeout(this.#connectTimer)
    this.#timer = undefined
    this.#requests.rejectAll(error)
  }

  /** Reports the final close: the `close` event (willReconnect false) and the promise of `close()`. */
  #finish (code: number, reason: string): void {
    this.#dispatch('close', { code, reason, willReconnect: false })
    this.#resolveClosed?.()
  }

  #request (body: Parameters<Requests['create']>[0]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#state === 'closed') {
        reject(new RealtimeError('CLOSED', 'The client is closed'))
        return
      }
      const request = this.#requests.create(body, false, resolve, reject)
      if (this.#state === 'open' && this.#socket?.readyState === OPEN) this.#write(request)
      else this.#requests.enqueue(request)
    })
  }

  #rejoin (channel: string): void {
    const request = this.#requests.create({ type: 'join', channel }, true, () => {}, (err) => {
      if (err.code !== 'TIMEOUT' && err.code !== 'CLOSED') this.#channels.delete(channel)
      if (err.code !== 'CLOSED') this.#emitError(err)
    })
    this.#write(request)
  }

  #write (request: PendingRequest): void {
    this.#socket!.send(JSON.stringify(request.frame))
    this.#requests.sent(request)
  }

  #emitError (error: RealtimeError): void {
    this.#dispatch('error', error)
  }

  #dispatch<K extends keyof RealtimeClientEventMap> (type: K, detail: RealtimeClientEventMap[K]['detail']): void {
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }
}

/**
 * Creates a client and connects at once (like `new WebSocket`). Type it with the server's action map so
 * `publish` and `on` only accept registered actions with their payload types:
 *
 * ```ts
 * const client = createClient<typeof actions>('ws://127.0.0.1:3000/ws', { deviceId: 'web-1' })
 * await client.join('lobby')
 * client.on('lobby', 'chat.message', (payload, { from }) => render(from, payload.text))
 * await client.publish('lobby', 'chat.message', { text: 'hi' })
 * ```
 * @param url the full endpoint (`ws://host:3000/ws`; `http(s):` and, in a browser, relative URLs are accepted)
 * @param options see `ClientOptions` (deviceId, requestTimeout 10000 ms, queueSize 100, minDelay 500 ms,
 *   maxDelay 30000 ms, WebSocket)
 * @throws TypeError for an invalid url or option
 */
export function createClient<A extends { [K in keyof A]: TSchema } = ClientActionMap> (url: string | URL, options?: ClientOptions): RealtimeClient<A> {
  return new RealtimeClient<A>(url, options)
}
