/**
 * The client's link to the server across reconnects: one socket at a time, the connect timeout, the backoff
 * between attempts, "retry now" (`reconnect()` and, in browsers, the window's `online` event) and the decision to
 * stop for good (a terminal close code, HTTP 401/403). It knows nothing of frames: the client parses them and
 * tells the link when the server's `welcome` arrived.
 */
import { backoffDelay } from './backoff.js'
import { RealtimeError } from './errors.js'
import { isTerminalCloseCode, type ResolvedClientOptions } from './options.js'
import { OPEN, type SocketLike, type WebSocketConstructor, loadWebSocket, refusedStatus } from './socket.js'
import type { ClientState } from './types.js'

/** HTTP statuses answering the upgrade after which the client closes for good (seen in Node only). */
const TERMINAL_HTTP_STATUSES: ReadonlySet<number> = new Set([401, 403])
/** Close code reported when a socket ended without a close frame. */
export const ABNORMAL_CLOSURE = 1006

/** How a socket of the link ended. */
export interface LinkClose {
  /** The WebSocket close code (1006 without a close frame). */
  code: number
  /** The close reason, or a description of the failure. */
  reason: string
  /** The next attempt when the link will reconnect; `undefined` when it ended for good. */
  retry: { attempt: number, delay: number } | undefined
  /**
   * Why the link ended for good when `close()` was not called (a terminal close code, HTTP 401/403, no WebSocket
   * implementation); `undefined` when it will reconnect or `close()` ended it.
   */
  ended: string | undefined
}

/** What the link reports to its client. Called synchronously, from socket events and timers. */
export interface LinkEvents {
  /** A frame arrived on the current socket (its `data`, unparsed). */
  frame: (data: unknown) => void
  /** The current socket closed, failed to open, or was abandoned. Called once per socket. */
  close: (close: LinkClose) => void
  /** A socket error, or a failure to load or construct the WebSocket implementation. */
  error: (error: RealtimeError) => void
}

/** The global object of a browser or worker, when it dispatches `online` events. */
interface OnlineTarget {
  addEventListener: (type: 'online', listener: () => void) => void
  removeEventListener: (type: 'online', listener: () => void) => void
}

/**
 * One logical connection, made of successive sockets. States: `connecting` until `welcomed()`, `open`,
 * `reconnecting` while a backoff delay runs, `closed` for good. Call `start()` once after construction.
 */
export class Link {
  readonly #options: ResolvedClientOptions
  readonly #url: () => string
  readonly #events: LinkEvents
  #state: ClientState = 'connecting'
  #socket: SocketLike | undefined
  #WebSocket: WebSocketConstructor | undefined
  /** HTTP status that refused the current attempt's upgrade, when known. */
  #refused: number | undefined
  #attempt = 0
  /** The backoff delay before the next attempt. */
  #timer: ReturnType<typeof setTimeout> | undefined
  /** The connect timeout of the current attempt. */
  #connectTimer: ReturnType<typeof setTimeout> | undefined
  /** The window this link listens to for `online`, in browsers. */
  #online: OnlineTarget | undefined
  readonly #onOnline = (): void => { if (this.#state === 'reconnecting') this.#retryNow() }

  /**
   * @param options the client's resolved options (connectTimeout, minDelay, maxDelay, isTerminalClose, WebSocket)
   * @param url returns the URL of the next attempt (it carries the deviceId, known after the first welcome)
   * @param events where the link reports frames, closes and errors
   */
  constructor (options: ResolvedClientOptions, url: () => string, events: LinkEvents) {
    this.#options = options
    this.#url = url
    this.#events = events
  }

  /** The link's state (see `ClientState`). */
  get state (): ClientState {
    return this.#state
  }

  /** True when welcomed and the socket is open: a frame sent now goes out at once. */
  get writable (): boolean {
    return this.#state === 'open' && this.#socket?.readyState === OPEN
  }

  /** Opens the first socket and, in browsers, starts listening for the window's `online` event. */
  start (): void {
    const target = globalThis as Partial<OnlineTarget>
    if (typeof target.addEventListener === 'function' && typeof target.removeEventListener === 'function') {
      this.#online = target as OnlineTarget
      this.#online.addEventListener('online', this.#onOnline)
    }
    this.#connect()
  }

  /** The server's `welcome` arrived on the current socket: the link is open, the attempt counter resets. */
  welcomed (): void {
    clearTimeout(this.#connectTimer)
    this.#attempt = 0
    this.#state = 'open'
  }

  /** Writes `text` to the current socket. Call only when `writable`. */
  send (text: string): void {
    this.#socket!.send(text)
  }

  /**
   * Connects now when waiting out a backoff delay (`reconnecting`); does nothing while `connecting` or `open`.
   * @throws RealtimeError `CLOSED` when the link ended for good
   */
  reconnect (): void {
    if (this.#state === 'closed') throw new RealtimeError('CLOSED', 'The client is closed; create a new one to connect again')
    if (this.#state === 'reconnecting') this.#retryNow()
  }

  /**
   * Ends the link for good: cancels any scheduled attempt and closes the socket with `code`. The `close` event
   * follows once the socket closed (at once when there is none).
   */
  close (code: number, reason: string): void {
    if (this.#state === 'closed') return
    this.#end()
    const socket = this.#socket
    if (socket !== undefined) socket.close(code)
    else this.#events.close({ code, reason, retry: undefined, ended: undefined })
  }

  #retryNow (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#connect()
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
      if (this.#state === 'connecting' && this.#socket === undefined) this.#open(loaded)
    }, (err: unknown) => {
      if (this.#state === 'closed') return
      this.#events.error(new RealtimeError('CONNECTION_FAILED', (err as Error).message, { cause: err }))
      this.#end()
      this.#events.close({
        code: ABNORMAL_CLOSURE, reason: 'no WebSocket implementation', retry: undefined, ended: 'No WebSocket implementation'
      })
    })
  }

  #open (Ctor: WebSocketConstructor): void {
    this.#WebSocket = Ctor
    let socket: SocketLike
    try {
      socket = new Ctor(this.#url())
    } catch (err) { // e.g. a browser's SecurityError: report it, retry with backoff
      this.#events.error(new RealtimeError('CONNECTION_FAILED', (err as Error).message, { cause: err }))
      this.#closed(ABNORMAL_CLOSURE, 'the WebSocket could not be created')
      return
    }
    this.#socket = socket
    socket.addEventListener('message', (event: { data: unknown }) => {
      if (this.#socket === socket && this.#state !== 'closed') this.#events.frame(event.data)
    })
    socket.addEventListener('error', (event: unknown) => {
      if (this.#socket !== socket || this.#state === 'closed') return
      const status = refusedStatus(event)
      if (status !== undefined) this.#refused = status
      const message = status === undefined ? 'WebSocket error' : `The server answered the upgrade with HTTP ${status}`
      this.#events.error(new RealtimeError('CONNECTION_FAILED', message, { status, cause: event }))
    })
    socket.addEventListener('close', (event: { code: number, reason: string }) => {
      if (this.#socket === socket) this.#closed(event.code, event.reason)
    })
    this.#connectTimer = setTimeout(() => {
      if (this.#socket !== socket || this.#state !== 'connecting') return
      // Abandon the socket: a peer that never answered may never finish a close handshake either.
      this.#closed(ABNORMAL_CLOSURE, `no welcome within ${this.#options.connectTimeout} ms`)
      socket.close()
    }, this.#options.connectTimeout)
  }

  /** The current socket is gone: report it, and either schedule the next attempt or end for good. */
  #closed (code: number, reason: string): void {
    clearTimeout(this.#connectTimer)
    this.#socket = undefined
    if (this.#state === 'closed') { // close() was called
      this.#events.close({ code, reason, retry: undefined, ended: undefined })
      return
    }
    const refused = this.#refused
    if (refused !== undefined && TERMINAL_HTTP_STATUSES.has(refused)) {
      this.#end()
      this.#events.close({
        code,
        reason: reason === '' ? `HTTP ${refused}` : reason,
        retry: undefined,
        ended: `The server refused the connection (HTTP ${refused}); the client will not reconnect`
      })
      return
    }
    if (this.#isTerminal(code, reason)) {
      this.#end()
      this.#events.close({
        code,
        reason,
        retry: undefined,
        ended: `The server ended the connection (${code}${reason === '' ? '' : ` ${reason}`}); the client will not reconnect`
      })
      return
    }
    this.#attempt++
    const delay = backoffDelay(this.#attempt, this.#options.minDelay, this.#options.maxDelay)
    this.#state = 'reconnecting'
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#connect()
    }, delay)
    this.#events.close({ code, reason, retry: { attempt: this.#attempt, delay }, ended: undefined })
  }

  /** The `isTerminalClose` option's verdict; when it throws, the error is reported and the default decides. */
  #isTerminal (code: number, reason: string): boolean {
    try {
      return this.#options.isTerminalClose(code, reason) === true
    } catch (err) {
      this.#events.error(new RealtimeError('HANDLER_FAILED', 'isTerminalClose threw; the default decided', { cause: err }))
      return isTerminalCloseCode(code)
    }
  }

  /** Enters the terminal state: no timer, no `online` listener. */
  #end (): void {
    this.#state = 'closed'
    clearTimeout(this.#timer)
    clearTimeout(this.#connectTimer)
    this.#timer = undefined
    this.#online?.removeEventListener('online', this.#onOnline)
    this.#online = undefined
  }
}
