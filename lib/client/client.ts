/**
 * `RealtimeClient`: one logical connection to a fastify-realtime endpoint that survives reconnects. It keeps
 * the deviceId, re-joins its channels and then sends the calls queued while disconnected; lifecycle events go
 * through `EventTarget`, deliveries through `on()` / `onDirect()`. The sockets, backoff and terminal closes are
 * the `Link`'s (link.ts); the calls awaiting replies are the `Requests`' (requests.ts).
 */
import { CloseCode } from '../constants.js'
import type { ErrorFrame, MessageFrame, ServerFrame } from '../protocol.js'
import { endpointUrl, withDeviceId } from './endpoint.js'
import { ClientEvents } from './events.js'
import { RealtimeError } from './errors.js'
import { Handlers } from './handlers.js'
import { Link, type LinkClose } from './link.js'
import { type MembershipSink, Memberships } from './memberships.js'
import { type ClientOptions, resolveClientOptions } from './options.js'
import { type FrameBody, type PendingRequest, Requests } from './requests.js'
import type {
  ActionName, ActionPayload, ActionResult, ClientActionDefinition, ClientActionMap, ClientState,
  DirectMessageHandler, HandledActionName, JoinResult, MessageHandler, PresenceMember, PublishOptions, PublishOptionsOf,
  StreamPosition
} from './types.js'
import type { TSchema } from 'typebox'

/**
 * A realtime client typed by the server's action map `A` (`createClient<typeof actions>(url)`).
 * Create it with `createClient`; it connects at once.
 */
export class RealtimeClient<A extends { [K in keyof A]: TSchema | ClientActionDefinition } = ClientActionMap> extends ClientEvents {
  /** The normalised endpoint URL (without the deviceId query parameter the client adds). */
  readonly url: string
  readonly #requests: Requests
  readonly #link: Link
  readonly #members = new Memberships()
  readonly #sink: MembershipSink = {
    reply: (id, result) => { this.#requests.reply(id, undefined, result) },
    emit: (type, detail) => { this.emit(type, detail) }
  }

  readonly #handlers = new Handlers()
  #deviceId: string | undefined
  #welcomed = false
  #closed: Promise<void> | undefined
  #resolveClosed: (() => void) | undefined

  /** Prefer `createClient()`. @throws TypeError for an invalid url or option. */
  constructor (url: string | URL, options: ClientOptions = {}) {
    super()
    const resolved = resolveClientOptions(options)
    this.url = endpointUrl(url)
    this.#deviceId = resolved.deviceId
    this.#requests = new Requests(resolved.requestTimeout, resolved.queueSize)
    this.#link = new Link(resolved, () => withDeviceId(this.url, this.#deviceId), {
      frame: (data) => this.#onFrame(data),
      close: (close) => this.#onClose(close),
      error: (error) => this.#emitError(error)
    })
    this.#link.start()
  }

  /** The deviceId: the one given, else the one the server assigned in its first `welcome` (`undefined` before). */
  get deviceId (): string | undefined {
    return this.#deviceId
  }

  /** The connection state: `connecting`, `open`, `reconnecting` or `closed` (see `ClientState`). */
  get state (): ClientState {
    return this.#link.state
  }

  /**
   * The channels joined (a copy): by `join()`, or by the server itself (unsolicited `joined`). They stay listed while
   * disconnected: the client re-joins them on reconnect.
   */
  get channels (): ReadonlySet<string> {
    return new Set(this.#members.channels)
  }

  /**
   * The last stream position seen of `channel` (a copy; channels with history): from `joined`, each delivery and
   * `reset`. A re-join after a reconnect sends it as `since`. `undefined` for other channels.
   */
  position (channel: string): StreamPosition | undefined {
    return this.#members.positions.since(channel)
  }

  /**
   * The members online in presence channel `channel` (a copy): the last snapshot with the diffs since applied.
   * `undefined` before the first snapshot and for channels without presence.
   */
  presence (channel: string): PresenceMember[] | undefined {
    return this.#members.presence.members(channel)
  }

  /**
   * Joins `channel`. Resolves on the server's `joined` (also when already joined) with `{ channel }`, plus on a
   * channel with history its `epoch` and `offset`, and `recovered` when the client held a position for it (see
   * `JoinResult`).
   * @throws (as a rejection) RealtimeError `FORBIDDEN`, `LIMIT_EXCEEDED`, `UNAVAILABLE`, `BAD_REQUEST` (invalid
   *   name), `RATE_LIMITED`, `TIMEOUT`, `QUEUE_FULL`, `CLOSED`
   */
  async join (channel: string): Promise<JoinResult> {
    const since = this.#members.positions.since(channel)
    return await this.#request(since === undefined ? { type: 'join', channel } : { type: 'join', channel, since }) as JoinResult
  }

  /**
   * Leaves `channel`. Resolves on the server's `left` (also when not joined); the channel is not re-joined anymore.
   * @throws (as a rejection) RealtimeError `BAD_REQUEST`, `RATE_LIMITED`, `TIMEOUT`, `QUEUE_FULL`, `CLOSED`
   */
  async leave (channel: string): Promise<void> {
    await this.#request({ type: 'leave', channel })
  }

  /**
   * Sends `action` with `payload` to joined `channel`. A relay action is published to every member of the channel
   * (the sender's own connections included unless `options.exceptSelf`); it resolves with `undefined` once the
   * server's pub/sub accepted it. A handled action runs the server's handler, which decides what to publish; it
   * resolves with the handler's result (`ack.result`), typed from the action's `reply` schema.
   * @param options relay actions only: `{ exceptSelf: true }`, no connection of this deviceId receives the message
   *   (default false)
   * @throws (as a rejection) RealtimeError `VALIDATION_FAILED` (with `details`), `UNKNOWN_ACTION`, `NOT_JOINED`,
   *   `FORBIDDEN`, `UNAVAILABLE` (not delivered, safe to retry), `BAD_REQUEST`, `RATE_LIMITED`, `INTERNAL`,
   *   `TIMEOUT`, an application's own code thrown by the handler (unchanged, with its `details`), `QUEUE_FULL`,
   *   `DISCONNECTED` (dropped before the ack: maybe delivered), `CLOSED`
   */
  publish<K extends ActionName<A>> (channel: string, action: K, payload: ActionPayload<A, K>, options?: PublishOptionsOf<A, K>): Promise<ActionResult<A, K>> {
    const opts: PublishOptions | undefined = options
    const body: FrameBody = opts?.exceptSelf === true
      ? { type: 'action', channel, action, payload, exceptSelf: true }
      : { type: 'action', channel, action, payload }
    return this.#request(body) as Promise<ActionResult<A, K>>
  }

  /**
   * Calls the handled action `action` without a channel (a request/response call: list rooms, load a profile) and
   * resolves with the handler's result, typed from the action's `reply` schema. Only actions defined with a
   * `handler` on the server compile (any action name for an untyped client).
   * @throws (as a rejection) RealtimeError `VALIDATION_FAILED` (with `details`), `UNKNOWN_ACTION`, `BAD_REQUEST` (a
   *   relay action: it needs a channel), `FORBIDDEN`, `RATE_LIMITED`, `INTERNAL`, `TIMEOUT`, an application's own
   *   code (unchanged, with its `details`), `QUEUE_FULL`, `DISCONNECTED` (dropped before the reply: the handler
   *   may have run), `CLOSED`
   */
  rpc<K extends HandledActionName<A>> (action: K, payload: ActionPayload<A, K>): Promise<ActionResult<A, K>> {
    return this.#request({ type: 'action', action, payload }) as Promise<ActionResult<A, K>>
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
   * Connects now instead of waiting out the backoff delay: while `reconnecting`, the scheduled attempt is cancelled
   * and the next one starts at once (the attempt counter goes on). Does nothing while `connecting` or `open`.
   * In browsers the client does the same by itself when the window fires `online`.
   * @throws RealtimeError `CLOSED` when the client is closed (`close()` or a terminal close): create a new client
   */
  reconnect (): void {
    this.#link.reconnect()
  }

  /**
   * Closes the connection with code 1000 and stops reconnecting. Pending and queued calls reject with `CLOSED`.
   * Resolves once the socket has closed (and the `close` event was dispatched). Idempotent.
   */
  close (): Promise<void> {
    if (this.#closed !== undefined) return this.#closed
    if (this.#link.state === 'closed') { // ended already by a terminal close: nothing more to close or report
      this.#closed = Promise.resolve()
      return this.#closed
    }
    this.#closed = new Promise((resolve) => { this.#resolveClosed = resolve })
    this.#requests.rejectAll(new RealtimeError('CLOSED', 'The client was closed'))
    this.#link.close(CloseCode.NORMAL, 'client closed')
    return this.#closed
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
      case 'joined': case 'left': case 'reset': case 'presence': case 'presence_diff':
        return this.#members.frame(frame, this.#sink)
      case 'ack':
        this.#requests.reply(frame.id, undefined, frame.result)
        return
      case 'error': return this.#onErrorFrame(frame)
      case 'message': return this.#deliver(frame)
      default:
        this.#emitError(new RealtimeError('BAD_FRAME', `Unknown frame type ${JSON.stringify((frame as { type?: unknown }).type)}`))
    }
  }

  #onWelcome (deviceId: string): void {
    const reconnected = this.#welcomed
    this.#welcomed = true
    this.#deviceId = deviceId
    this.#link.welcomed()
    this.#members.welcomed()
    // Re-join first: the server handles joins in order and holds actions behind a pending join.
    for (const channel of this.#members.channels) this.#rejoin(channel)
    for (const request of this.#requests.drain()) this.#write(request)
    this.emit('open', { deviceId, reconnected })
  }

  #onErrorFrame (frame: ErrorFrame<string, unknown>): void {
    const error = new RealtimeError(frame.code, frame.message, { details: frame.details, id: frame.id })
    if (!this.#requests.reply(frame.id, error)) this.#emitError(error)
  }

  #deliver (frame: MessageFrame): void {
    // Channels with history: a message seen already (offset at or below the position) is dropped; the position
    // advances before any handler runs.
    if (!this.#members.positions.accept(frame.channel, frame.offset)) return
    this.#handlers.deliver(frame, (err) => {
      this.#emitError(new RealtimeError('HANDLER_FAILED', `A handler of "${frame.action}" threw`, { cause: err }))
    })
  }

  #onClose ({ code, reason, retry, ended }: LinkClose): void {
    this.#requests.disconnected()
    this.#members.disconnected()
    if (retry === undefined) {
      if (ended !== undefined) this.#requests.rejectAll(new RealtimeError('CLOSED', ended))
      this.emit('close', { code, reason, willReconnect: false })
      this.#resolveClosed?.()
      return
    }
    this.emit('close', { code, reason, willReconnect: true })
    // A close listener may have called close() or reconnect(): then no attempt is scheduled anymore.
    if (this.#link.state === 'reconnecting') this.emit('reconnecting', retry)
  }

  #request (body: FrameBody): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.#link.state === 'closed') {
        reject(new RealtimeError('CLOSED', 'The client is closed'))
        return
      }
      const request = this.#requests.create(body, false, resolve, reject)
      if (this.#link.writable) this.#write(request)
      else this.#requests.enqueue(request)
    })
  }

  /** Joins `channel` again on a new connection, from its stream position when it has one (recovery). */
  #rejoin (channel: string): void {
    const since = this.#members.positions.since(channel)
    const body: FrameBody = since === undefined ? { type: 'join', channel } : { type: 'join', channel, since }
    const request = this.#requests.create(body, true, () => {}, (err) => {
      // Ignored when the server joined the channel by itself on this connection (authenticate's channels): the
      // connection is a member whatever the answer to the re-join.
      if (err.code === 'CLOSED' || this.#members.confirmed(channel)) return
      if (err.code !== 'TIMEOUT' && this.#members.left(channel)) this.emit('left', { channel, byServer: true })
      this.#emitError(err)
    })
    this.#write(request)
  }

  #write (request: PendingRequest): void {
    this.#link.send(JSON.stringify(request.frame))
    this.#requests.sent(request)
  }

  #emitError (error: RealtimeError): void {
    this.emit('error', error)
  }
}

/**
 * Creates a client and connects at once (like `new WebSocket`). Type it with the server's action map so
 * `publish`, `rpc` and `on` only accept registered actions with their payload types, and resolve with their reply
 * types:
 *
 * ```ts
 * const client = createClient<typeof actions>('ws://127.0.0.1:3000/ws', { deviceId: 'web-1' })
 * await client.join('lobby')
 * client.on('lobby', 'chat.message', (payload, { from }) => render(from, payload.text))
 * await client.publish('lobby', 'chat.message', { text: 'hi' })
 * ```
 * @param url the full endpoint (`ws://host:3000/ws`; `http(s):` and, in a browser, relative URLs are accepted)
 * @param options see `ClientOptions` (deviceId, requestTimeout 10000 ms, connectTimeout 10000 ms, queueSize 100,
 *   minDelay 500 ms, maxDelay 30000 ms, isTerminalClose `isTerminalCloseCode`, WebSocket)
 * @throws TypeError for an invalid url or option
 */
export function createClient<A extends { [K in keyof A]: TSchema | ClientActionDefinition } = ClientActionMap> (url: string | URL, options?: ClientOptions): RealtimeClient<A> {
  return new RealtimeClient<A>(url, options)
}
