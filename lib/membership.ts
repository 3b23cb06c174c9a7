/**
 * Channel membership of one connection: join (limit, `authorizeJoin`, adapter subscription, `joined` reply) and
 * leave, and leaving every channel when the socket closes.
 */
import { authorized } from './authorize.js'
import type { Connection } from './connection.js'
import { CHANNEL_TOPIC_PREFIX } from './constants.js'
import { runHook } from './hooks.js'
import { membershipFrame, type RequestId } from './protocol.js'

/**
 * A client's join of `channel`: checks `maxChannelsPerConnection` and `authorizeJoin`, subscribes through the
 * registry, then answers `joined` (once the subscription is active). Errors are replies (`LIMIT_EXCEEDED`,
 * `FORBIDDEN`, `UNAVAILABLE`, `INTERNAL`); the returned promise never rejects.
 */
export async function join (connection: Connection, channel: string, id: RequestId | undefined): Promise<void> {
  if (connection.channels.has(channel)) {
    connection.sendFrame(membershipFrame('joined', channel, id))
    return
  }
  const { maxChannelsPerConnection, authorizeJoin } = connection.ctx.options
  if (connection.channels.size + connection.joining >= maxChannelsPerConnection) {
    connection.error('LIMIT_EXCEEDED', `At most ${maxChannelsPerConnection} channels per connection`, id)
    return
  }
  connection.joining++
  try {
    if (authorizeJoin !== undefined && !(await authorized(connection, () => authorizeJoin(connection, channel), id))) return
    try {
      await subscribe(connection, channel, id)
    } catch (err) {
      connection.log.warn({ err, channel }, 'fastify-realtime: join failed, adapter did not subscribe')
      connection.error('UNAVAILABLE', 'Could not subscribe to the channel, retry later', id)
    }
  } finally {
    connection.joining--
  }
}

/**
 * A server-side join (`connection.join`, `app.realtime.join`, `authenticate`'s `channels`): the same subscription
 * path as a client join, without `authorizeJoin` or the channel limit (the server decided), answered with an
 * unsolicited `joined` (no `id`). Nothing happens for a channel already joined or a closed connection.
 * @throws the adapter's error (e.g. FST_REALTIME_UNAVAILABLE) when the subscription fails; nothing is joined then.
 */
export async function serverJoin (connection: Connection, channel: string): Promise<void> {
  if (connection.channels.has(channel) || connection.closed) return
  connection.joining++
  try {
    await subscribe(connection, channel, undefined)
  } finally {
    connection.joining--
  }
}

/** Subscribes, records the channel, answers `joined` and runs `onJoin`. @throws the adapter's error */
async function subscribe (connection: Connection, channel: string, id: RequestId | undefined): Promise<void> {
  const topic = CHANNEL_TOPIC_PREFIX + channel
  const registry = connection.ctx.registry
  await registry.add(topic, connection)
  if (connection.closed) {
    registry.remove(topic, connection)
    return
  }
  connection.channels.add(channel)
  connection.sendFrame(membershipFrame('joined', channel, id))
  const onJoin = connection.ctx.options.onJoin
  if (onJoin !== undefined) runHook(connection, 'onJoin', () => onJoin(connection, channel))
}

/**
 * Leaves `channel` and answers `left`. Always succeeds locally (also for a channel not joined); the adapter
 * reconciles its subscription now, or when the backend is back.
 */
export function leave (connection: Connection, channel: string, id: RequestId | undefined): void {
  const wasJoined = connection.channels.delete(channel)
  if (wasJoined) connection.ctx.registry.remove(CHANNEL_TOPIC_PREFIX + channel, connection)
  connection.sendFrame(membershipFrame('left', channel, id))
  const onLeave = connection.ctx.options.onLeave
  if (wasJoined && onLeave !== undefined) runHook(connection, 'onLeave', () => onLeave(connection, channel))
}

/** A server-side leave: like a client's, with an unsolicited `left` (no `id`), and nothing for a channel not joined. */
export function serverLeave (connection: Connection, channel: string): void {
  if (connection.channels.has(channel)) leave(connection, channel, undefined)
}

/** Leaves every channel of a closed connection (no reply: the socket is gone), with `onLeave` for each. */
export function leaveAll (connection: Connection): void {
  const registry = connection.ctx.registry
  const onLeave = connection.ctx.options.onLeave
  for (const channel of connection.channels) {
    registry.remove(CHANNEL_TOPIC_PREFIX + channel, connection)
    if (onLeave !== undefined) runHook(connection, 'onLeave', () => onLeave(connection, channel))
  }
  connection.channels.clear()
}
