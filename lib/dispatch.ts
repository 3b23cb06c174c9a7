/**
 * Frame dispatch of one connection: parse -> validate -> authorize -> join, leave or publish; replies; and the
 * per-connection order. Frames that must wait (a join, a leave, an action behind an async `authorizePublish`)
 * run one at a time, in order; while any is pending, every later frame of that connection queues behind it, so
 * replies and publishes keep frame order. Other connections never wait.
 */
import { authorized } from './authorize.js'
import type { Connection } from './connection.js'
import { CHANNEL_TOPIC_PREFIX } from './constants.js'
import { join, leave } from './membership.js'
import {
  type ActionFrame, type ClientFrame, ackFrame, messageFrame, parseClientFrame, payloadErrors
} from './protocol.js'

/** Handles one text frame of `connection` (already rate-limited). Never throws. */
export function dispatch (connection: Connection, text: string): void {
  const result = parseClientFrame(text, connection.ctx.options.maxDepth)
  if (!result.ok) {
    connection.sendFrame(JSON.stringify(result.error))
    return
  }
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
    return perform(connection, frame)
  } catch (err) {
    connection.internal(err, frame.id)
    return undefined
  }
}

function perform (connection: Connection, frame: ClientFrame): Promise<void> | undefined {
  if (frame.type === 'join') return join(connection, frame.channel, frame.id)
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
    .finally(() => { connection.queued-- })
}

/**
 * Validates and publishes an action. Synchronous up to `adapter.publish` unless `authorizePublish` returns a
 * promise; the caller then queues later frames behind the returned promise, so publish order is frame order.
 */
function action (connection: Connection, frame: ActionFrame): Promise<void> | undefined {
  const { channel, action, payload, id } = frame
  const validator = connection.ctx.options.actions.get(action)
  if (validator === undefined) {
    connection.error('UNKNOWN_ACTION', `Unknown action "${action}"`, id)
    return undefined
  }
  if (!connection.channels.has(channel)) {
    connection.error('NOT_JOINED', `Join "${channel}" before publishing to it`, id)
    return undefined
  }
  const details = payloadErrors(validator.validate, payload)
  if (details !== undefined) {
    connection.error('VALIDATION_FAILED', `Payload of "${action}" is invalid`, id, details)
    return undefined
  }
  const authorizePublish = connection.ctx.options.authorizePublish
  if (authorizePublish === undefined) {
    publish(connection, frame)
    return undefined
  }
  const verdict = authorizePublish(connection, channel, action)
  if (verdict === true) {
    publish(connection, frame)
    return undefined
  }
  return authorized(connection, () => verdict, id).then((allowed) => {
    if (allowed) publish(connection, frame)
  })
}

function publish (connection: Connection, { channel, action, payload, id }: ActionFrame): void {
  const { inflight, adapter } = connection.ctx
  inflight.start()
  adapter.publish(CHANNEL_TOPIC_PREFIX + channel, messageFrame(channel, action, payload, connection.deviceId)).then(() => {
    if (id !== undefined) connection.sendFrame(ackFrame(id))
    inflight.end()
  }, (err: unknown) => {
    connection.log.warn({ err, channel }, 'fastify-realtime: adapter publish failed, answered UNAVAILABLE')
    connection.error('UNAVAILABLE', 'The message was not delivered, retry later', id)
    inflight.end()
  })
}
