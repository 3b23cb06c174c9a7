/**
 * Presence on the plugin side: the `presence` option, a member per device on joining a presence channel (snapshot
 * to the joiner, `presence_diff` to everyone when a device's first connection joins or its last leaves, on any
 * node), and `app.realtime.presence()`. Counting across nodes, heartbeats and the sweep of dead nodes are the
 * adapter's (`adapters/presence.ts`, `adapters/redis-presence.ts`).
 */
import type { FastifyBaseLogger } from 'fastify'
import type { RealtimeAdapter } from './adapters/adapter.js'
import type { PresenceChange, PresenceMember } from './adapters/presence.js'
import type { Connection } from './connection.js'
import { CHANNEL_TOPIC_PREFIX } from './constants.js'
import { FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_INVALID_OPTION } from './errors.js'
import { isChannelName, presenceDiffFrame } from './protocol.js'

/**
 * The `presence` plugin option: `false` (default), `true` (every channel), or a function of the channel name. The
 * function must give the same answer for a channel every time, on every node.
 */
export type PresenceOption = boolean | ((channel: string) => boolean)

/** Whether a channel has presence. */
export type PresenceOf = (channel: string) => boolean

/**
 * Validates the `presence` option against the adapter; `undefined` when presence is off.
 * @throws FST_REALTIME_INVALID_OPTION for a bad value, or when the adapter has no presence capability.
 */
export function resolvePresence (option: unknown, adapter: RealtimeAdapter): PresenceOf | undefined {
  if (option === undefined || option === false) return undefined
  if (option !== true && typeof option !== 'function') {
    throw new FST_REALTIME_INVALID_OPTION(`presence must be a boolean or a function (channel) => boolean, got ${JSON.stringify(option)}`)
  }
  if (adapter.presence === undefined) {
    throw new FST_REALTIME_INVALID_OPTION('presence needs an adapter with the presence capability (adapter.presence); memoryAdapter() and redisAdapter() have it')
  }
  if (option === true) return () => true
  const fn = option as (channel: string) => unknown
  return (channel) => fn(channel) === true
}

/** The member a connection is: its deviceId, and `presenceInfo` from what `authenticate` returned, when given. */
function memberOf (connection: Connection): PresenceMember {
  const info = (connection.auth as { presenceInfo?: unknown } | undefined)?.presenceInfo
  return info === undefined ? { deviceId: connection.deviceId } : { deviceId: connection.deviceId, info }
}

/** Publishes a change as a `presence_diff` to every member of the channel on every node (at most once). */
export function publishDiff (adapter: RealtimeAdapter, log: FastifyBaseLogger, channel: string, change: PresenceChange): void {
  if (change.joins.length === 0 && change.leaves.length === 0) return
  adapter.publish(CHANNEL_TOPIC_PREFIX + channel, presenceDiffFrame(channel, change.joins, change.leaves)).catch((err: unknown) => {
    log.warn({ err, channel }, 'fastify-realtime: could not publish a presence diff')
  })
}

/**
 * Records `connection` in the channel's presence (a diff when its device is new there) and resolves with the
 * members for its snapshot. On failure nothing stays recorded. @throws the adapter's error
 */
export async function presenceJoin (connection: Connection, channel: string): Promise<PresenceMember[]> {
  const { adapter, log } = connection.ctx
  const topic = CHANNEL_TOPIC_PREFIX + channel
  publishDiff(adapter, log, channel, await adapter.presence!.add(topic, connection.id, memberOf(connection)))
  try {
    return await adapter.presence!.list(topic)
  } catch (err) {
    presenceLeave(connection, channel)
    throw err
  }
}

/** Forgets `connection` in the channel's presence (a diff when it was its device's last connection). Never throws. */
export function presenceLeave (connection: Connection, channel: string): void {
  const { adapter, log } = connection.ctx
  adapter.presence!.remove(CHANNEL_TOPIC_PREFIX + channel, connection.id).then((change) => publishDiff(adapter, log, channel, change), (err: unknown) => {
    log.warn({ err, channel }, 'fastify-realtime: presence remove failed')
  })
}

/**
 * `app.realtime.presence(channel)`: the members across nodes.
 * @throws FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_INVALID_OPTION (presence off for the channel), or the adapter's
 *   error, as rejections.
 */
export async function listPresence (adapter: RealtimeAdapter, presenceOf: PresenceOf | undefined, channel: string): Promise<PresenceMember[]> {
  if (!isChannelName(channel)) throw new FST_REALTIME_INVALID_CHANNEL(String(channel))
  if (presenceOf?.(channel) !== true) throw new FST_REALTIME_INVALID_OPTION(`channel "${channel}" has no presence (see the presence option)`)
  return await adapter.presence!.list(CHANNEL_TOPIC_PREFIX + channel)
}
