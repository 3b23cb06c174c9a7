/**
 * `RealtimeError`: the one error type the client rejects with and reports through its `error` event.
 * Its `code` is either a wire error code sent by the server (`VALIDATION_FAILED`, `FORBIDDEN`, `UNAVAILABLE`, ...)
 * or a client-side code from `ClientErrorCode`. Match on `code`, never on the message.
 */
import type { RequestId, WireErrorCode } from '../protocol.js'

/** Error codes produced by the client itself (the server never sends these). */
export const ClientErrorCode = {
  /** No reply within `requestTimeout` ms. A request already sent may still take effect on the server. */
  TIMEOUT: 'TIMEOUT',
  /** The call was made while not connected and `queueSize` calls were already waiting. Nothing was sent. */
  QUEUE_FULL: 'QUEUE_FULL',
  /** The client is closed (`close()`, or a terminal close such as 1008 or an HTTP 401/403). Nothing more is sent. */
  CLOSED: 'CLOSED',
  /**
   * The connection dropped after a `publish` was sent and before its `ack`: the server may or may not have
   * published it, so the client does not resend it. Joins and leaves are resent instead (they are idempotent).
   */
  DISCONNECTED: 'DISCONNECTED',
  /** The WebSocket failed (refused, reset, or an HTTP status instead of the upgrade; see `status`). */
  CONNECTION_FAILED: 'CONNECTION_FAILED',
  /** A frame from the server was not valid JSON or not a known frame type; it was ignored. */
  BAD_FRAME: 'BAD_FRAME',
  /**
   * A handler given to `on()` / `onDirect()` threw (the other handlers still ran), or the `isTerminalClose` option
   * threw (the default decided); `cause` holds what was thrown.
   */
  HANDLER_FAILED: 'HANDLER_FAILED'
} as const
export type ClientErrorCode = typeof ClientErrorCode[keyof typeof ClientErrorCode]

/**
 * Every code a `RealtimeError` may carry: the protocol's wire codes, the client's own, and an application's codes
 * (`^[A-Z][A-Z0-9_]{2,63}$`, thrown by a server-side action handler as `new RealtimeError(code, ...)`), which
 * reach the client unchanged.
 */
export type RealtimeErrorCode = WireErrorCode | ClientErrorCode | (string & {})

/** Optional fields of a `RealtimeError`. */
export interface RealtimeErrorInit {
  /**
   * What the server sent in the error's `details`: for `VALIDATION_FAILED` and `BAD_REQUEST` the failing JSON
   * pointers and messages (`ValidationDetail[]`, e.g. `[{ path: '/payload/text', message }]`); for an
   * application's code whatever JSON value its handler gave.
   */
  details?: unknown
  /** The request id of the frame the server answered, when it had one. */
  id?: RequestId
  /** For `CONNECTION_FAILED`: the HTTP status that answered the upgrade (Node with `ws` only; browsers hide it). */
  status?: number
  /** The underlying error or thrown value. */
  cause?: unknown
}

/** An error of the realtime client: a rejected `join` / `leave` / `publish`, or the detail of an `error` event. */
export class RealtimeError extends Error {
  override readonly name = 'RealtimeError'
  /**
   * A wire code (`FORBIDDEN`, `VALIDATION_FAILED`, ...), a client code (`TIMEOUT`, `QUEUE_FULL`, `CLOSED`, ...) or
   * the application's own code from a server-side handler, unchanged.
   */
  readonly code: RealtimeErrorCode
  /** See `RealtimeErrorInit.details`. */
  readonly details: unknown
  /** See `RealtimeErrorInit.id`. */
  readonly id: RequestId | undefined
  /** See `RealtimeErrorInit.status`. */
  readonly status: number | undefined

  constructor (code: RealtimeErrorCode, message: string, init: RealtimeErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause })
    this.code = code
    this.details = init.details
    this.id = init.id
    this.status = init.status
  }
}
