/**
 * Runs a handled action's handler for one frame: the reply (`ack` with `result`, checked against the `reply`
 * schema), `RealtimeError` answered with the application's code, the backend's unavailability answered
 * `UNAVAILABLE`, any other failure answered `INTERNAL` without its message, and `TIMEOUT` after `handlerTimeout` ms. A synchronous handler costs no promise.
 */
import type { ActionDefinition } from './actions.js'
import type { Connection } from './connection.js'
import { RealtimeError } from './errors.js'
import { ackFrame, toDetails, type RequestId } from './protocol.js'

/**
 * Calls `def.handler` and answers the sender. Returns a promise (never rejecting) while an async handler is
 * pending, so the caller keeps the connection's later frames behind it; `undefined` when it answered at once.
 */
export function runHandler (connection: Connection, def: ActionDefinition, channel: string | undefined, payload: unknown, id: RequestId | undefined): Promise<void> | undefined {
  const { inflight, options, metrics } = connection.ctx
  const started = metrics.now()
  let value: unknown
  try {
    value = def.handler!({ connection, channel, action: def.name, payload })
  } catch (err) {
    failed(connection, def, err, id)
    metrics.actionDone(def.name, started)
    return undefined
  }
  if (!isThenable(value)) {
    reply(connection, def, value, id)
    metrics.actionDone(def.name, started)
    return undefined
  }
  inflight.start()
  return new Promise<void>((resolve) => {
    let settled = false
    const timer = setTimeout(() => {
      settled = true
      connection.log.warn({ action: def.name, handlerTimeout: options.handlerTimeout }, 'fastify-realtime: action handler timed out, answered TIMEOUT')
      connection.error('TIMEOUT', `The handler of "${def.name}" did not answer within ${options.handlerTimeout} ms`, id)
      metrics.actionDone(def.name, started)
      inflight.end()
      resolve()
    }, options.handlerTimeout)
    value.then((result) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reply(connection, def, result, id)
      metrics.actionDone(def.name, started)
      inflight.end()
      resolve()
    }, (err: unknown) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      failed(connection, def, err, id)
      metrics.actionDone(def.name, started)
      inflight.end()
      resolve()
    })
  })
}

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
}

/** Answers the handler's value: an ack with `result` (none without `id`), or INTERNAL if it fails `reply`. */
function reply (connection: Connection, def: ActionDefinition, result: unknown, id: RequestId | undefined): void {
  const validateReply = def.validateReply
  if (validateReply !== undefined && !validateReply.Check(result)) {
    const details = toDetails(validateReply.Errors(result))
    connection.log.error({ action: def.name, details }, 'fastify-realtime: action handler resolved a value that fails its reply schema, answered INTERNAL')
    connection.error('INTERNAL', 'Internal error', id)
    return
  }
  if (id === undefined) return
  let frame: string
  try {
    frame = ackFrame(id, result)
  } catch (err) {
    connection.log.error({ err, action: def.name }, 'fastify-realtime: action handler resolved a value that is not JSON, answered INTERNAL')
    connection.error('INTERNAL', 'Internal error', id)
    return
  }
  connection.sendFrame(frame)
}

/** Codes of the plugin's own errors that a handler may let through: the backend was unreachable (or closing). */
const UNAVAILABLE_CAUSES = new Set(['FST_REALTIME_UNAVAILABLE', 'FST_REALTIME_ADAPTER_CLOSED'])

/**
 * A `RealtimeError` is answered with its code. An `FST_REALTIME_UNAVAILABLE` or `FST_REALTIME_ADAPTER_CLOSED` the
 * handler let through (e.g. from `app.realtime.publish` while Redis or a cluster shard is down) is answered
 * `UNAVAILABLE`, as a relay action's publish is: the client may retry. Anything else is logged and answered INTERNAL.
 */
function failed (connection: Connection, def: ActionDefinition, err: unknown, id: RequestId | undefined): void {
  if (err instanceof RealtimeError) {
    connection.error(err.code, err.message, id, err.details)
    return
  }
  if (UNAVAILABLE_CAUSES.has((err as { code?: unknown } | null)?.code as string)) {
    connection.log.warn({ err, action: def.name }, 'fastify-realtime: action handler failed on an unreachable backend, answered UNAVAILABLE')
    connection.error('UNAVAILABLE', 'The message was not delivered, retry later', id)
    return
  }
  connection.log.error({ err, action: def.name }, 'fastify-realtime: action handler failed, answered INTERNAL')
  connection.error('INTERNAL', 'Internal error', id)
}
