/**
 * The pub/sub adapter contract. An adapter moves serialised delivery frames between server nodes;
 * it knows nothing of connections, channels or frames. `memoryAdapter()` and `redisAdapter()` implement
 * it, and any other backend (NATS, MQTT, Postgres LISTEN/NOTIFY...) can: run the conformance suite
 * exported as `fastify-realtime/adapter-tests` to prove it.
 */
import type { FastifyInstance } from 'fastify'
import type { HistoryCapability, StreamPosition } from './history.js'
import type { PresenceCapability } from './presence.js'

/**
 * Called with each message published to a topic the handler subscribed to. Must not throw; the adapter
 * calls handlers synchronously one after the other and guards each call. `position` is given for messages
 * published with `adapter.history.publish()` only (the message string itself is never changed); one object per
 * message per node, shared by every handler: do not mutate it.
 */
export type MessageHandler = (message: string, position?: StreamPosition) => void

/** Connection state of an adapter: `ready`, `reconnecting` (backend unreachable, retrying) or `closed`. */
export type AdapterStatus = 'ready' | 'reconnecting' | 'closed'

/**
 * A pub/sub backend.
 *
 * Contract (what the conformance suite checks):
 * - Topics are opaque strings (fastify-realtime uses `channel:<name>` and `device:<deviceId>`); adapters may
 *   prefix them for their backend but never interpret them as patterns.
 * - `subscribe(topic, handler)` resolves once a message published afterwards, from any node, will reach
 *   `handler`. Several handlers may subscribe to one topic; each receives every message once. Subscribing the
 *   same handler twice to one topic is a no-op. A rejected subscribe leaves no subscription behind.
 * - `unsubscribe(topic, handler)` stops deliveries to that handler as soon as it is called (nothing is
 *   delivered to it afterwards, even if in flight) and resolves when the backend subscription of the topic is
 *   released (when the last handler of the topic left). Unknown topic/handler pairs are a no-op.
 * - `publish(topic, message)` resolves when the backend accepted the message (at-most-once delivery: pub/sub
 *   keeps no history; a node that is not subscribed at that moment never sees it). Messages published by one
 *   adapter instance are delivered in publish order to every subscriber: across topics on a single backend
 *   (memory, one Redis), per topic on a sharded one (Redis Cluster, where topics live on different shards).
 * - Backend outages: while disconnected, `publish` rejects at once with `FST_REALTIME_UNAVAILABLE` (nothing is
 *   queued, so a message is delivered everywhere or nowhere); `subscribe` waits a bounded time for the backend, then
 *   rejects with it and leaves no subscription behind; `unsubscribe` always succeeds locally. On reconnection the
 *   adapter subscribes again exactly the topics that still have handlers.
 * - `close()` releases every subscription and every resource the adapter opened itself (never a client the
 *   application passed in). It is idempotent. After it, `subscribe` and `publish` reject with
 *   `FST_REALTIME_ADAPTER_CLOSED`, and no handler is called again.
 * - Optional capabilities, each with its own guarantees and conformance section: `history` (per-topic streams with
 *   offsets and epochs, `./history.ts`) and `presence` (members across nodes, `./presence.ts`). An adapter without
 *   them keeps working; the plugin refuses its `history`/`presence` options at register time when they are missing.
 */
export interface RealtimeAdapter {
  /** Optional hook, called once by the plugin at register time before any other method. */
  init?: (fastify: FastifyInstance) => Promise<void> | void
  /**
   * Optional: the backend connection state, for `app.realtime.health()`. Without it the plugin reports `ready`
   * until `close()`. While not `ready`, `publish` must reject at once (FST_REALTIME_UNAVAILABLE) rather than queue.
   */
  status?: () => AdapterStatus
  subscribe: (topic: string, handler: MessageHandler) => Promise<void>
  unsubscribe: (topic: string, handler: MessageHandler) => Promise<void>
  publish: (topic: string, message: string) => Promise<void>
  close: () => Promise<void>
  /** Optional capability: per-topic history with offsets and epochs (see `HistoryCapability`). */
  history?: HistoryCapability
  /** Optional capability: presence across nodes (see `PresenceCapability`). */
  presence?: PresenceCapability
}

/** True when `value` has the four methods of a `RealtimeAdapter`, and well-formed capabilities if it has any. */
export function isAdapter (value: unknown): value is RealtimeAdapter {
  if (value === null || typeof value !== 'object') return false
  const a = value as Record<string, unknown>
  return typeof a.subscribe === 'function' && typeof a.unsubscribe === 'function' &&
    typeof a.publish === 'function' && typeof a.close === 'function' &&
    (a.init === undefined || typeof a.init === 'function') &&
    (a.status === undefined || typeof a.status === 'function') &&
    (a.history === undefined || hasMethods(a.history, ['publish', 'read'], ['start', 'onReconnect'])) &&
    (a.presence === undefined || hasMethods(a.presence, ['add', 'remove', 'list', 'onChange'], ['start']))
}

function hasMethods (value: unknown, required: string[], optional: string[]): boolean {
  if (value === null || typeof value !== 'object') return false
  const o = value as Record<string, unknown>
  return required.every((name) => typeof o[name] === 'function') &&
    optional.every((name) => o[name] === undefined || typeof o[name] === 'function')
}
