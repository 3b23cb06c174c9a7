/**
 * Options of `createClient()`: types, defaults (with units) and validation. A bad option throws a `TypeError`
 * from `createClient()`, never later.
 */
import { CloseCode, DEVICE_ID_PATTERN } from '../constants.js'
import type { WebSocketConstructor } from './socket.js'

/** Default time a `join` / `leave` / `publish` may wait for its reply, in ms (10 s). */
export const DEFAULT_REQUEST_TIMEOUT = 10_000
/** Default time a connection attempt may take until the server's `welcome`, in ms (10 s). */
export const DEFAULT_CONNECT_TIMEOUT = 10_000
/** Default number of calls kept while not connected. */
export const DEFAULT_QUEUE_SIZE = 100
/** Default shortest reconnect delay, in ms. */
export const DEFAULT_MIN_DELAY = 500
/** Default longest reconnect delay, in ms (30 s). */
export const DEFAULT_MAX_DELAY = 30_000

/**
 * The default of the `isTerminalClose` option: true for the close codes after which retrying cannot help, so the
 * client closes for good instead of reconnecting:
 * - 1003 (binary frame), 1008 (policy violation, e.g. flooding), 1009 (a frame over the server's `maxPayload`);
 * - 4000-4999, the application range (RFC 6455 §7.4.2): the application ended this connection on purpose, e.g. a
 *   kick with `app.realtime.disconnect(deviceId)` (code 4000 unless it gives another).
 *
 * Every other code is retried: 1001 (server shutdown), 1006 (network loss), 1011, 1013, ...
 * @param code the WebSocket close code
 */
export function isTerminalCloseCode (code: number): boolean {
  return code === CloseCode.UNSUPPORTED_DATA || code === CloseCode.POLICY_VIOLATION ||
    code === CloseCode.MESSAGE_TOO_BIG || (code >= 4000 && code <= 4999)
}

/** Options of `createClient(url, options)`. */
export interface ClientOptions {
  /**
   * The deviceId to connect with, `^[A-Za-z0-9_-]{1,64}$`. Default: none, the server assigns one in its first
   * `welcome`; either way the client reconnects with the same deviceId.
   */
  deviceId?: string
  /**
   * Time in ms a `join`, `leave` or `publish` may take, counted from the call (time spent queued included),
   * before it rejects with `TIMEOUT`. Default 10000.
   */
  requestTimeout?: number
  /**
   * Time in ms from opening a socket to the server's `welcome`; past it the attempt is abandoned (reported as a
   * `close` with code 1006) and retried with backoff. Default 10000.
   */
  connectTimeout?: number
  /**
   * How many calls made before the first `open` or while disconnected are kept, to be sent once connected;
   * a call beyond it rejects at once with `QUEUE_FULL`. `0` rejects every such call at once. Default 100.
   */
  queueSize?: number
  /** Shortest delay before a reconnect attempt, in ms (>= 1). Default 500. */
  minDelay?: number
  /** Longest delay before a reconnect attempt, in ms (>= minDelay). Default 30000. */
  maxDelay?: number
  /**
   * Decides, for each close the client did not ask for, whether it is final: `true` closes the client for good
   * (state `closed`, calls reject `CLOSED`), `false` reconnects with backoff. Called with the close code and
   * reason. Default `isTerminalCloseCode`: 1003, 1008, 1009 and the application range 4000-4999 are final. To retry
   * one application code, e.g. a "come back later" 4001:
   * `isTerminalClose: (code) => code !== 4001 && isTerminalCloseCode(code)`.
   * (An HTTP 401 / 403 answering the upgrade, seen in Node with `ws` only, is final whatever this returns.)
   */
  isTerminalClose?: (code: number, reason: string) => boolean
  /**
   * The WebSocket constructor to use. Default: the global `WebSocket` (browsers, Node >= 22), else the
   * `ws` package (Node 20).
   */
  WebSocket?: WebSocketConstructor
}

/** Options after defaults and validation. */
export interface ResolvedClientOptions {
  deviceId: string | undefined
  requestTimeout: number
  connectTimeout: number
  queueSize: number
  minDelay: number
  maxDelay: number
  isTerminalClose: (code: number, reason: string) => boolean
  WebSocket: WebSocketConstructor | undefined
}

const deviceIdPattern = new RegExp(DEVICE_ID_PATTERN)

/** Applies defaults and validates every option. @throws TypeError naming the bad option. */
export function resolveClientOptions (opts: ClientOptions = {}): ResolvedClientOptions {
  if (opts === null || typeof opts !== 'object') throw new TypeError('createClient: options must be an object')
  const { deviceId } = opts
  if (deviceId !== undefined && (typeof deviceId !== 'string' || !deviceIdPattern.test(deviceId))) {
    throw new TypeError(`createClient: deviceId must match ${DEVICE_ID_PATTERN}, got ${JSON.stringify(deviceId)}`)
  }
  if (opts.WebSocket !== undefined && typeof opts.WebSocket !== 'function') {
    throw new TypeError('createClient: WebSocket must be a WebSocket constructor')
  }
  if (opts.isTerminalClose !== undefined && typeof opts.isTerminalClose !== 'function') {
    throw new TypeError('createClient: isTerminalClose must be a function (code, reason) => boolean')
  }
  const minDelay = count(opts.minDelay, DEFAULT_MIN_DELAY, 'minDelay', 1)
  const maxDelay = count(opts.maxDelay, Math.max(DEFAULT_MAX_DELAY, minDelay), 'maxDelay', minDelay)
  return {
    deviceId,
    requestTimeout: count(opts.requestTimeout, DEFAULT_REQUEST_TIMEOUT, 'requestTimeout', 1),
    connectTimeout: count(opts.connectTimeout, DEFAULT_CONNECT_TIMEOUT, 'connectTimeout', 1),
    queueSize: count(opts.queueSize, DEFAULT_QUEUE_SIZE, 'queueSize', 0),
    minDelay,
    maxDelay,
    isTerminalClose: opts.isTerminalClose ?? isTerminalCloseCode,
    WebSocket: opts.WebSocket
  }
}

/** Longest delay a timer accepts, in ms (about 24.8 days). */
const MAX_TIMER = 2 ** 31 - 1

function count (value: unknown, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > MAX_TIMER) {
    throw new TypeError(`createClient: ${name} must be an integer from ${min} to ${MAX_TIMER}, got ${JSON.stringify(value)}`)
  }
  return value
}
