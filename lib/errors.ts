/**
 * The catalogue of errors thrown by fastify-realtime's JavaScript API, created with `@fastify/error`.
 * Codes are stable (match on `err.code`, never on the message). Wire error codes sent to clients
 * (`BAD_REQUEST`, `NOT_JOINED`, ...) are a different thing and live in `protocol.ts`.
 */
// The named import: with the default one the emitted declarations name `createError.FastifyErrorConstructor`, which
// does not resolve where the default import is the function alone (TypeScript's bundler resolution, `module: commonjs`).
import { createError } from '@fastify/error'

/** A register option is invalid (thrown by `fastify.register`). Message names the option. */
export const FST_REALTIME_INVALID_OPTION = createError<[string]>(
  'FST_REALTIME_INVALID_OPTION', 'Invalid fastify-realtime option: %s', 500, TypeError)

/** A channel name does not match `^[A-Za-z0-9:_.-]{1,128}$`. */
export const FST_REALTIME_INVALID_CHANNEL = createError<[string]>(
  'FST_REALTIME_INVALID_CHANNEL', 'Invalid channel name "%s"', 400, TypeError)

/** A deviceId does not match `^[A-Za-z0-9_-]{1,64}$`. */
export const FST_REALTIME_INVALID_DEVICE_ID = createError<[string]>(
  'FST_REALTIME_INVALID_DEVICE_ID', 'Invalid deviceId "%s"', 400, TypeError)

/** The action name was not registered in the `actions` option. */
export const FST_REALTIME_UNKNOWN_ACTION = createError<[string]>(
  'FST_REALTIME_UNKNOWN_ACTION', 'Unknown action "%s"', 400)

/**
 * A payload failed its action's TypeBox schema. The error carries `details`:
 * `Array<{ path: string, message: string }>` with JSON pointer paths.
 */
export const FST_REALTIME_VALIDATION_FAILED = createError<[string]>(
  'FST_REALTIME_VALIDATION_FAILED', 'Payload of action "%s" failed validation', 400)

/** The adapter was closed: no more subscribe or publish is possible. */
export const FST_REALTIME_ADAPTER_CLOSED = createError(
  'FST_REALTIME_ADAPTER_CLOSED', 'The realtime adapter is closed', 503)

/**
 * The pub/sub backend is unreachable (e.g. Redis down): nothing was published or subscribed. Safe to retry.
 * Adapters reject with it at once while disconnected, and `subscribe` after waiting at most its bounded time.
 */
export const FST_REALTIME_UNAVAILABLE = createError(
  'FST_REALTIME_UNAVAILABLE', 'The realtime adapter is not connected: %s', 503)

/**
 * The plugin was registered twice in one Fastify context (or in a child of a context that has it), where the
 * second `fastify.realtime` would shadow the first. Two endpoints work from two sibling encapsulated contexts.
 */
export const FST_REALTIME_ALREADY_REGISTERED = createError(
  'FST_REALTIME_ALREADY_REGISTERED',
  'fastify-realtime is already registered in this context (fastify.realtime exists). For a second endpoint, register ' +
  'it in its own encapsulated context with its own path: app.register(async (child) => { await child.register(realtimePlugin, ' +
  "{ path: '/other' }) }); see the README section \"Several endpoints in one app\"", 500)

/** Pattern of an application error code: `^[A-Z][A-Z0-9_]{2,63}$` (the built-in wire codes match it too). */
export const APPLICATION_ERROR_CODE = /^[A-Z][A-Z0-9_]{2,63}$/

/**
 * Thrown by an action handler to refuse a call with the application's own reason. The client receives
 * `{"type":"error","code","message","id","details"?}` with exactly these values (any other throw is answered
 * `INTERNAL`, without its message). `code` matches `^[A-Z][A-Z0-9_]{2,63}$` (e.g. `'ROOM_FULL'`; a built-in wire
 * code such as `'FORBIDDEN'` is allowed too); `details` is any JSON value (the built-in codes use
 * `[{ path, message }]`).
 *
 * ```ts
 * handler: async ({ payload }) => {
 *   if (await isFull(payload.room)) throw new RealtimeError('ROOM_FULL', 'The room is full', { max: 50 })
 * }
 * ```
 * @throws TypeError from the constructor when `code` does not match the pattern (answered `INTERNAL` if thrown
 *   inside a handler, and logged).
 */
export class RealtimeError extends Error {
  override readonly name = 'RealtimeError'
  /** The error code sent to the client. */
  readonly code: string
  /** Sent as the frame's `details` when not `undefined`. */
  readonly details: unknown

  constructor (code: string, message: string, details?: unknown) {
    if (typeof code !== 'string' || !APPLICATION_ERROR_CODE.test(code)) {
      throw new TypeError(`RealtimeError code must match ${APPLICATION_ERROR_CODE.source}, got ${JSON.stringify(code)}`)
    }
    super(message)
    this.code = code
    this.details = details
  }
}

/** A close code or reason given to `app.realtime.disconnect` / `connection.close` is invalid. */
export const FST_REALTIME_INVALID_CLOSE = createError<[string]>(
  'FST_REALTIME_INVALID_CLOSE', 'Invalid close: %s', 400, TypeError)
/**
 * The `metrics` option would create a metric whose name is already registered in the registry (another live
 * fastify-realtime instance, or the app's own metric). Thrown by `fastify.register`; the message names the metric.
 * Pass another `metrics.registry` (e.g. `new client.Registry()`) or another `metrics.prefix`.
 */
export const FST_REALTIME_METRICS_CONFLICT = createError<[string]>(
  'FST_REALTIME_METRICS_CONFLICT',
  'Metric "%s" is already registered in this registry: pass another metrics.registry or metrics.prefix', 500)

/**
 * An action's payload or reply schema cannot be written into the AsyncAPI document (a `$ref`/`$defs` or cyclic
 * schema, a type with no JSON form such as `Type.Undefined()` or `Type.Function()`, or a value JSON cannot carry).
 * Thrown when the document is built (`ready()` rejects with it); the message names the action and the reason.
 */
export const FST_REALTIME_ASYNCAPI_UNSUPPORTED_SCHEMA = createError<[string, string, string]>(
  'FST_REALTIME_ASYNCAPI_UNSUPPORTED_SCHEMA',
  'The %s schema of action "%s" cannot be described in AsyncAPI: %s', 500, TypeError)
