/**
 * Frame dispatch of one connection: parse -> validate -> authorize -> join, leave or publish; replies; and the
 * per-connection order. Frames that must wait (a join, a leave, an action behind an async `authorizePublish`)
 * run one at a time, in order; while any is pending, every later frame of that connection queues behind it, so
 * replies and publishes keep frame order. Other connections never wait.
 */
import type { ActionDefinition } from './actions.js'
import { authorized } from './authorize.js'
import type { Connection } from './connection.js'
import { publishToChannel } from './history.js'
import { encodeEnvelope } from './envelope.js'
import { runHandler } from './handler.js'
import { join, leave } from './membership.js'
import {
  type ActionFrame, type ClientFrame, ackFrame, messageFrame, parseClientFrame, payloadErrors
} from './protocol.js'

/** The `queue` of a connection with no frame pending: one settled promise shared by every connection. */
export const SETTLED: Promise<void> = Promise.resolve()

/** Handles one text frame of `connection` (already rate-limited). Never throws. */
export function dispatch (connection: Connection, text: string): void {
  const { options, metrics } = connection.ctx
  const result = parseClientFrame(text, options.maxDepth)
  if (!result.ok) {
    metrics.frameReceived('invalid')
    connection.sendFrame(JSON.stringify(result.error))
    metrics.error(result.error.code)
    return
  }
  metrics.frameReceived(result.frame.type)
  const frame = result.frame
  if (connection.queued === 0) {
    const pending = guard(connection, frame)
    if (pending !== undefined) track(connection, pending, frame)
    return
  }
  track(connection, connection.queue.then(() => connection.closed ? undefined : guard(connection, frame)), frame)
}

/** Runs one frame; a synchronous throw becomes an INTERNAL reply. */
function guard (connection: Connection, frame: ClientFrame): Promise<void> | undefined {
  try {
    return route(connection, frame)
  } catch (err) {
    connection.internal(err, frame.id)
    return undefined
  }
}

function route (connection: Connection, frame: ClientFrame): Promise<void> | undefined {
  if (frame.type === 'join') return join(connection, frame.channel, frame.id, frame.since)
  if (frame.type === 'leave') {
    leave(connection, frame.channel, frame.id)
    return undefined
  }
  return action(connection, frame)
}

function track (connection: Connection, pending: Promise<void>, frame: ClientFrame): void {
  connection.queued++
  connection.queue = pending
    .catch((err: unknown) => connection.internal(err, frame.id))
    .finally(() => {
      // Nothing queued behind it: drop the settled chain (a shared settled promise takes its place).
      if (--connection.queued === 0) connection.queue = SETTLED
    })
}

/**
 * Validates and authorizes an action, then publishes it (relay) or runs its handler. Synchronous up to
 * `adapter.publish` unless `authorizePublish` or the handler returns a promise; the caller then queues later frames
 * behind the returned promise, so publish and reply order is frame order.
 */
function action (connection: Connection, frame: ActionFrame): Promise<void> | undefined {
  const { channel, action, payload, id } = frame
  const def = connection.ctx.options.actions.get(action)
  if (def === undefined) {
    connection.error('UNKNOWN_ACTION', `Unknown action "${action}"`, id)
    return undefined
  }
  connection.ctx.metrics.action(action)
  const handled = def.handler !== undefined
  if (channel === undefined) {
    if (!handled) {
      connection.error('BAD_REQUEST', `"${action}" is a relay action: it needs a channel`, id, [{ path: '/channel', message: 'required for relay actions' }])
      return undefined
    }
  } else if (!connection.channels.has(channel)) {
    connection.error('NOT_JOINED', `Join "${channel}" before publishing to it`, id)
    return undefined
  }
  if (handled && frame.exceptSelf !== undefined) {
    connection.error('BAD_REQUEST', `"${action}" is a handled action: exceptSelf applies to relay actions only`, id, [{ path: '/exceptSelf', message: 'relay actions only' }])
    return undefined
  }
  const details = payloadErrors(def.validate, payload)
  if (details !== undefined) {
    connection.error('VALIDATION_FAILED', `Payload of "${action}" is invalid`, id, details)
    return undefined
  }
  const authorizePublish = connection.ctx.options.authorizePublish
  const verdict = authorizePublish === undefined ? true : authorizePublish(connection, channel, action)
  if (verdict === true) return perform(connection, def, frame)
  return authorized(connection, () => verdict, id).then((allowed) => allowed ? perform(connection, def, frame) : undefined)
}

/** The authorized action: the handler's call, or the relay's publish. */
function perform (connection: Connection, def: ActionDefinition, frame: ActionFrame): Promise<void> | undefined {
  if (def.handler !== undefined) return runHandler(connection, def, frame.channel, frame.payload, frame.id)
  publish(connection, frame as ActionFrame & { channel: string })
  return undefined
}

/** Publishes a relay action (with `exceptSelf`, as an envelope excepting the sender's deviceId); ack or UNAVAILABLE. */
function publish (connection: Connection, { channel, action, payload, exceptSelf, id }: ActionFrame & { channel: string }): void {
  const { inflight, adapter, metrics } = connection.ctx
  inflight.start()
  const started = metrics.now()
  const frame = messageFrame(channel, action, payload, connection.deviceId)
  const message = exceptSelf === true ? encodeEnvelope({ e: connection.deviceId }, frame) : frame
  publishToChannel(adapter, connection.ctx.options.history, channel, message).then(() => {
    metrics.publishDone(started)
    if (id !== undefined) connection.sendFrame(ackFrame(id))
    inflight.end()
  }, (err: unknown) => {
    metrics.publishDone(started)
    metrics.adapterError()
    connection.log.warn({ err, channel }, 'fastify-realtime: adapter publish failed, answered UNAVAILABLE')
    connection.error('UNAVAILABLE', 'The message was not delivered, retry later', id)
    inflight.end()
  })
}
