/**
 * Channel membership of one connection: join (limit, `authorizeJoin`, adapter subscription, `joined` reply) and
 * leave, and leaving every channel when the socket closes.
 */
import type { HistoryPage } from './adapters/history.js'
import type { PresenceMember } from './adapters/presence.js'
import { authorized } from './authorize.js'
import type { Connection } from './connection.js'
import { CHANNEL_TOPIC_PREFIX } from './constants.js'
import { isRecovered, storedFrame, type Since } from './history.js'
import { runHook } from './hooks.js'
import { presenceJoin, presenceLeave } from './presence.js'
import { membershipFrame, presenceFrame, streamJoinedFrame, type RequestId } from './protocol.js'

/**
 * A client's join of `channel`: checks `maxChannelsPerConnection` and `authorizeJoin`, subscribes through the
 * registry, then answers `joined` (once the subscription is active). Errors are replies (`LIMIT_EXCEEDED`,
 * `FORBIDDEN`, `UNAVAILABLE`, `INTERNAL`); the returned promise never rejects.
 */
export async function join (connection: Connection, channel: string, id: RequestId | undefined, since?: Since): Promise<void> {
  if (connection.channels.has(channel)) {
    joinedAgain(connection, channel, id)
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
      await subscribe(connection, channel, id, since)
    } catch (err) {
      connection.log.warn({ err, channel }, 'fastify-realtime: join failed, adapter did not subscribe')
      connection.error('UNAVAILABLE', 'Could not subscribe to the channel, retry later', id)
    }
  } finally {
    connection.joining--
  }
}

/**
 * Answers a join of a channel the connection is in already: `joined` again, with the stream position this
 * connection was sent up to on a channel with history. Nothing is replayed and `recovered` is left out, `since` or
 * not: the server cannot tell what this connection missed before it joined (e.g. joined by the server itself at
 * the stream's top); the client compares the position with its own.
 */
function joinedAgain (connection: Connection, channel: string, id: RequestId | undefined): void {
  const position = connection.ctx.options.history?.(channel) === undefined
    ? undefined
    : connection.ctx.registry.position(CHANNEL_TOPIC_PREFIX + channel, connection)
  if (position === undefined) {
    connection.sendFrame(membershipFrame('joined', channel, id))
    return
  }
  connection.sendFrame(streamJoinedFrame(channel, id, position.epoch, position.offset, undefined))
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
async function subscribe (connection: Connection, channel: string, id: RequestId | undefined, since?: Since): Promise<void> {
  const { options } = connection.ctx
  const history = options.history?.(channel)
  if (history !== undefined || options.presence?.(channel) === true) {
    await subscribeHeld(connection, channel, id, since, history?.size ?? 0)
    return
  }
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
 * Joins a channel with history or presence. The member is held (its live deliveries kept aside) from the moment
 * the subscription is active, while the stream is read (from `since` when given, else just its top) and the
 * presence recorded and listed; then `joined` (with the stream position and `recovered`), the replay when
 * recovered, the presence snapshot, and the held deliveries after the replay's end, in order: no gap, no duplicate.
 * @throws the adapter's error; nothing stays joined or recorded then.
 */
async function subscribeHeld (connection: Connection, channel: string, id: RequestId | undefined, since: Since | undefined, size: number): Promise<void> {
  const { registry, adapter, options } = connection.ctx
  const topic = CHANNEL_TOPIC_PREFIX + channel
  await registry.add(topic, connection, true)
  const withPresence = options.presence?.(channel) === true
  const [read, listed] = await Promise.allSettled([
    size === 0 ? undefined : adapter.history!.read(topic, { since: since?.offset ?? 0, limit: since === undefined ? 0 : size }),
    withPresence ? presenceJoin(connection, channel) : undefined
  ])
  if (read.status === 'rejected' || listed.status === 'rejected' || connection.closed) {
    registry.remove(topic, connection)
    if (withPresence && listed.status === 'fulfilled') presenceLeave(connection, channel)
    if (read.status === 'rejected') throw read.reason
    if (listed.status === 'rejected') throw listed.reason
    return
  }
  const page: HistoryPage | undefined = read.value
  const members: PresenceMember[] | undefined = listed.value
  connection.channels.add(channel)
  if (page === undefined) {
    connection.sendFrame(membershipFrame('joined', channel, id))
  } else {
    const recovered = since === undefined ? undefined : isRecovered(since, page)
    if (recovered !== undefined) connection.ctx.metrics.recovery(recovered ? 'recovered' : 'not_recovered')
    connection.sendFrame(streamJoinedFrame(channel, id, page.epoch, page.offset, recovered))
    if (recovered === true) {
      for (const entry of page.messages) {
        const frame = storedFrame(entry.message, entry.offset, connection.deviceId)
        if (frame !== undefined) connection.sendFrame(frame)
      }
    }
  }
  if (members !== undefined) connection.sendFrame(presenceFrame(channel, members))
  registry.release(topic, connection, page?.offset ?? 0, page)
  const onJoin = options.onJoin
  if (onJoin !== undefined) runHook(connection, 'onJoin', () => onJoin(connection, channel))
}

/**
 * Leaves `channel` and answers `left`. Always succeeds locally (also for a channel not joined); the adapter
 * reconciles its subscription now, or when the backend is back.
 */
export function leave (connection: Connection, channel: string, id: RequestId | undefined): void {
  const wasJoined = connection.channels.delete(channel)
  if (wasJoined) {
    connection.ctx.registry.remove(CHANNEL_TOPIC_PREFIX + channel, connection)
    if (connection.ctx.options.presence?.(channel) === true) presenceLeave(connection, channel)
  }
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
  const presence = connection.ctx.options.presence
  for (const channel of connection.channels) {
    registry.remove(CHANNEL_TOPIC_PREFIX + channel, connection)
    if (presence?.(channel) === true) presenceLeave(connection, channel)
    if (onLeave !== undefined) runHook(connection, 'onLeave', () => onLeave(connection, channel))
  }
  connection.channels.clear()
}
