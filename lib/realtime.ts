/**
 * The `fastify.realtime` decorator: server-side publish to a channel and direct send to a deviceId, server-side
 * membership and disconnect of a deviceId, on every node; this node's connections, stats and health. Payloads are
 * validated against the registered action schemas and serialised once per call.
 */
import { type ActionEntry, type ActionPayload, serverMessage } from './actions.js'
import type { AdapterStatus, RealtimeAdapter } from './adapters/adapter.js'
import { buildAsyncApi, type AsyncApiDocument } from './asyncapi.js'
import { resolveAsyncApiOptions } from './asyncapi-options.js'
import type { ConnectionContext, RealtimeConnection } from './connection.js'
import type { Counters } from './counters.js'
import { CHANNEL_TOPIC_PREFIX, DEVICE_TOPIC_PREFIX } from './constants.js'
import { controlMessage, disconnectCommand, type DisconnectOptions } from './control.js'
import { encodeEnvelope } from './envelope.js'
import { FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_INVALID_DEVICE_ID } from './errors.js'
import { isChannelName, isDeviceId } from './protocol.js'
import type { PresenceMember } from './adapters/presence.js'
import { publishToChannel, readHistory, type ChannelHistoryPage } from './history.js'
import { listPresence } from './presence.js'

/** Options of `app.realtime.publish`. */
export interface PublishOptions {
  /** A deviceId whose connections (on every node) do not receive this message, e.g. the sender of a typing indicator. */
  except?: string
}

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
export interface Realtime<A extends { [K in keyof A]: ActionEntry }> {
  /** The adapter in use. */
  readonly adapter: RealtimeAdapter
  /**
   * Publishes `action` with `payload` to every member of `channel` on every node, with `from: null`; with
   * `options.except`, not to the connections of that deviceId. Resolves when the adapter accepted the message.
   * @throws FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_INVALID_DEVICE_ID (`except`), FST_REALTIME_UNKNOWN_ACTION,
   *   FST_REALTIME_VALIDATION_FAILED (with `details: { path, message }[]`), or the adapter's error (e.g.
   *   FST_REALTIME_UNAVAILABLE, FST_REALTIME_ADAPTER_CLOSED), as rejections.
   */
  publish: <K extends keyof A & string>(channel: string, action: K, payload: ActionPayload<A, K>, options?: PublishOptions) => Promise<void>
  /**
   * Sends `action` to every connection of `deviceId` on every node, as a message frame without `channel`.
   * @throws FST_REALTIME_INVALID_DEVICE_ID, FST_REALTIME_UNKNOWN_ACTION, FST_REALTIME_VALIDATION_FAILED, or the
   *   adapter's error, as rejections.
   */
  sendToDevice: <K extends keyof A & string>(deviceId: string, action: K, payload: ActionPayload<A, K>) => Promise<void>
  /**
   * Joins every connection of `deviceId`, on every node, to `channel` (server-side: no `authorizeJoin`); each gets
   * an unsolicited `{"type":"joined","channel"}` once its subscription is active. Resolves when the adapter accepted
   * the command (not when every node applied it). Connections opened later are not affected.
   * @throws FST_REALTIME_INVALID_DEVICE_ID, FST_REALTIME_INVALID_CHANNEL, or the adapter's error, as rejections.
   */
  join: (deviceId: string, channel: string) => Promise<void>
  /**
   * Removes every connection of `deviceId`, on every node, from `channel`; each one that was joined gets an
   * unsolicited `{"type":"left","channel"}`. Resolves when the adapter accepted the command.
   * @throws FST_REALTIME_INVALID_DEVICE_ID, FST_REALTIME_INVALID_CHANNEL, or the adapter's error, as rejections.
   */
  leave: (deviceId: string, channel: string) => Promise<void>
  /**
   * Closes every connection of `deviceId` on every node with `code` (4000-4999, default 4000) and `reason` (at most
   * 123 bytes, default `''`), e.g. after a logout. Resolves when the adapter accepted the command.
   * @throws FST_REALTIME_INVALID_DEVICE_ID, FST_REALTIME_INVALID_CLOSE, or the adapter's error, as rejections.
   */
  disconnect: (deviceId: string, options?: DisconnectOptions) => Promise<void>
  /**
   * Stored messages of a channel with history: `{ epoch, offset, messages: [{ offset, action, payload, from }] }`,
   * ascending, `since` exclusive (default 0), at most `limit` (default 100); `offset` is the channel's latest.
   * @throws FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_INVALID_OPTION (the channel has no history, or a bad
   *   since/limit), or the adapter's error (FST_REALTIME_UNAVAILABLE), as rejections.
   */
  history: (channel: string, query?: { since?: number, limit?: number }) => Promise<ChannelHistoryPage>
  /**
   * The members of a presence channel across nodes: one `{ deviceId, info? }` per device.
   * @throws FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_INVALID_OPTION (the channel has no presence), or the
   *   adapter's error, as rejections.
   */
  presence: (channel: string) => Promise<PresenceMember[]>
  /** This node's open connections (live view; copy it before awaiting inside a loop), for admin routes. */
  connections: () => IterableIterator<RealtimeConnection>
  /** Counters of this node. */
  stats: () => RealtimeStats
  /** Health of this node: adapter state, connections, channels. */
  health: () => RealtimeHealth
  /**
   * The AsyncAPI 3.0 document of the endpoint (docs/observability.md), a plain JSON object: built at `onReady` with
   * the `asyncapi` option, else on the first call with the default `info`; the same object afterwards.
   * @throws FST_REALTIME_ASYNCAPI_UNSUPPORTED_SCHEMA naming the action whose schema cannot be described.
   */
  asyncapi: () => AsyncApiDocument
}

/** Builds the decorator over the plugin's shared state. */
export function createRealtime (ctx: ConnectionContext, state: { closing: boolean, closed: boolean }): Realtime<any> {
  const { adapter, registry, connections, counters, inflight, metrics } = ctx
  const actions = ctx.options.actions
  let document: AsyncApiDocument | undefined

  /** `adapter.publish`, timed and its failures counted (metrics). */
  async function publish (topic: string, message: string): Promise<void> {
    await timed(adapter.publish(topic, message))
  }

  /** Awaits an adapter publish started just now, timed and its failure counted (metrics). */
  async function timed (published: Promise<unknown>): Promise<void> {
    const started = metrics.now()
    try {
      await published
    } catch (err) {
      metrics.adapterError()
      throw err
    } finally {
      metrics.publishDone(started)
    }
  }

  async function control (deviceId: string, command: Parameters<typeof controlMessage>[1]): Promise<void> {
    const [topic, message] = controlMessage(deviceId, command)
    await publish(topic, message)
  }

  return {
    adapter,
    async publish (channel: string, action: string, payload: unknown, options?: PublishOptions) {
      if (!isChannelName(channel)) throw new FST_REALTIME_INVALID_CHANNEL(String(channel))
      const except = options?.except
      if (except !== undefined && !isDeviceId(except)) throw new FST_REALTIME_INVALID_DEVICE_ID(String(except))
      const frame = serverMessage(actions, channel, action, payload)
      await timed(publishToChannel(adapter, ctx.options.history, channel, except === undefined ? frame : encodeEnvelope({ e: except }, frame)))
    },
    async sendToDevice (deviceId: string, action: string, payload: unknown) {
      if (!isDeviceId(deviceId)) throw new FST_REALTIME_INVALID_DEVICE_ID(String(deviceId))
      await publish(DEVICE_TOPIC_PREFIX + deviceId, serverMessage(actions, undefined, action, payload))
    },
    async join (deviceId: string, channel: string) {
      await control(deviceId, { c: 'join', channel })
    },
    async leave (deviceId: string, channel: string) {
      await control(deviceId, { c: 'leave', channel })
    },
    async disconnect (deviceId: string, options?: DisconnectOptions) {
      await control(deviceId, disconnectCommand(options))
    },
    history (channel: string, query?: { since?: number, limit?: number }) {
      return readHistory(adapter, ctx.options.history, channel, query)
    },
    presence (channel: string) {
      return listPresence(adapter, ctx.options.presence, channel)
    },
    connections () {
      return connections.values()
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
    },
    asyncapi () {
      document ??= buildAsyncApi(actions, { path: ctx.options.path, options: ctx.options.asyncapi ?? resolveAsyncApiOptions({})! })
      return document
    }
  }
}
