/**
 * The `fastify.realtime` decorator: server-side publish to a channel and direct send to a deviceId, on every
 * node. Payloads are validated against the registered action schemas and serialised once per call.
 */
import type { Static, TSchema } from 'typebox'
import type { AdapterStatus, RealtimeAdapter } from './adapters/adapter.js'
import type { ConnectionContext } from './connection.js'
import type { Counters } from './counters.js'
import { CHANNEL_TOPIC_PREFIX, DEVICE_TOPIC_PREFIX } from './constants.js'
import {
  FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_INVALID_DEVICE_ID, FST_REALTIME_UNKNOWN_ACTION,
  FST_REALTIME_VALIDATION_FAILED
} from './errors.js'
import { isChannelName, isDeviceId, messageFrame, payloadErrors } from './protocol.js'

/** Counters of one node, from `app.realtime.stats()`. */
export interface RealtimeStats extends Counters {
  /** Open WebSocket connections on this node. */
  connections: number
  /** Adapter topics (channels and deviceIds) this node is subscribed to. */
  topics: number
  /** Publishes handed to the adapter and not yet acknowledged. */
  inflight: number
}

/** From `app.realtime.health()`, and served by the `healthRoute` option (200 when ok, 503 when degraded). */
export interface RealtimeHealth {
  /** `'ok'` when the adapter is ready and the node is not shutting down. */
  status: 'ok' | 'degraded'
  /** The adapter's connection state. */
  adapter: AdapterStatus
  /** Open WebSocket connections on this node. */
  connections: number
  /** Channels with at least one member on this node. */
  channels: number
}

/** The `fastify.realtime` decorator, typed by the action map `A` (see `RealtimeActions`). */
export interface Realtime<A extends { [K in keyof A]: TSchema }> {
  /** The adapter in use. */
  readonly adapter: RealtimeAdapter
  /**
   * Publishes `action` with `payload` to every member of `channel` on every node, with `from: null`.
   * Resolves when the adapter accepted the message.
   * @throws FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_UNKNOWN_ACTION, FST_REALTIME_VALIDATION_FAILED (with
   *   `details: { path, message }[]`), or the adapter's error (e.g. FST_REALTIME_ADAPTER_CLOSED), as rejections.
   */
  publish: <K extends keyof A & string>(channel: string, action: K, payload: Static<A[K]>) => Promise<void>
  /**
   * Sends `action` to every connection of `deviceId` on every node, as a message frame without `channel`.
   * @throws FST_REALTIME_INVALID_DEVICE_ID, FST_REALTIME_UNKNOWN_ACTION, FST_REALTIME_VALIDATION_FAILED, or the
   *   adapter's error, as rejections.
   */
  sendToDevice: <K extends keyof A & string>(deviceId: string, action: K, payload: Static<A[K]>) => Promise<void>
  /** Counters of this node. */
  stats: () => RealtimeStats
  /** Health of this node: adapter state, connections, channels. */
  health: () => RealtimeHealth
}

/** Builds the decorator over the plugin's shared state. */
export function createRealtime (ctx: ConnectionContext, state: { closing: boolean, closed: boolean }): Realtime<any> {
  const { adapter, registry, connections, counters, inflight } = ctx
  const actions = ctx.options.actions

  function frame (channel: string | undefined, action: string, payload: unknown): string {
    const validator = actions.get(action)
    if (validator === undefined) throw new FST_REALTIME_UNKNOWN_ACTION(action)
    const details = payloadErrors(validator.validate, payload)
    if (details !== undefined) throw Object.assign(new FST_REALTIME_VALIDATION_FAILED(action), { details })
    return messageFrame(channel, action, payload, null)
  }

  return {
    adapter,
    async publish (channel: string, action: string, payload: unknown) {
      if (!isChannelName(channel)) throw new FST_REALTIME_INVALID_CHANNEL(String(channel))
      await adapter.publish(CHANNEL_TOPIC_PREFIX + channel, frame(channel, action, payload))
    },
    async sendToDevice (deviceId: string, action: string, payload: unknown) {
      if (!isDeviceId(deviceId)) throw new FST_REALTIME_INVALID_DEVICE_ID(String(deviceId))
      await adapter.publish(DEVICE_TOPIC_PREFIX + deviceId, frame(undefined, action, payload))
    },
    stats () {
      return { connections: connections.size, topics: registry.topicCount, inflight: inflight.count, ...counters }
    },
    health () {
      const adapterStatus = adapter.status?.() ?? (state.closed ? 'closed' : 'ready')
      return {
        status: adapterStatus === 'ready' && !state.closing ? 'ok' : 'degraded',
        adapter: adapterStatus,
        connections: connections.size,
        channels: registry.topics().filter((topic) => topic.startsWith(CHANNEL_TOPIC_PREFIX)).length
      }
    }
  }
}
