/**
 * fastify-realtime: channelled WebSocket messaging for Fastify 5.
 *
 * ```ts
 * import realtimePlugin, { memoryAdapter, redisAdapter } from 'fastify-realtime'
 * await app.register(realtimePlugin, { actions: { 'chat.message': Type.Object({ text: Type.String() }) } })
 * await app.realtime.publish('room:1', 'chat.message', { text: 'hi' })
 * ```
 */
import type { TSchema } from 'typebox'
import type { Realtime } from './realtime.js'
import { realtimePlugin } from './plugin.js'

/**
 * The registered actions, for static types of `fastify.realtime`. Augment it with your action map:
 *
 * ```ts
 * const actions = { 'chat.message': Type.Object({ text: Type.String() }) }
 * declare module 'fastify-realtime' {
 *   interface RealtimeActions { 'chat.message': typeof actions['chat.message'] }
 * }
 * ```
 * Left empty, `publish`/`sendToDevice` accept any action name and an `unknown` payload.
 */
export interface RealtimeActions {}

/** `RealtimeActions` when augmented, else any action map. */
export type RegisteredActions = keyof RealtimeActions extends never ? { [name: string]: TSchema } : RealtimeActions

declare module 'fastify' {
  interface FastifyInstance {
    /** fastify-realtime's decorator: publish, sendToDevice, join, leave, disconnect, connections, adapter, stats, health. */
    realtime: Realtime<RegisteredActions>
  }
}

export { realtimePlugin }
export default realtimePlugin
export type { Realtime, RealtimeStats, RealtimeHealth, PublishOptions } from './realtime.js'
export type { DisconnectOptions } from './control.js'
export { realtimeOptions, type RealtimePluginOptions, type AuthResult } from './options.js'
export {
  defineAction,
  type ActionMap, type ActionEntry, type ActionSpec, type ActionHandler, type ActionCall, type ActionDefinition,
  type ActionPayload, type ActionReply, type PayloadSchemaOf, type HandledActionSpec
} from './actions.js'
export type { RealtimeConnection } from './connection.js'
export type { RealtimeAdapter, MessageHandler, AdapterStatus } from './adapters/adapter.js'
export type {
  HistoryCapability, HistoryEntry, HistoryOptions, HistoryPage, HistoryQuery, StreamPosition
} from './adapters/history.js'
export type { PresenceCapability, PresenceChange, PresenceListener, PresenceMember } from './adapters/presence.js'
export type { RateLimitOptions } from './rate-limit.js'
export type { PerMessageDeflateOptions } from './deflate.js'
export type { AllowedOrigins } from './origin.js'
export type {
  MetricsOptions, MetricsBuckets, PromClientLike, RegistryLike, MetricConfig, CounterLike, GaugeLike, HistogramLike
} from './metrics-options.js'
export { METRICS, type MetricDefinition } from './metric-catalogue.js'
export type { AsyncApiOptions, AsyncApiServer } from './asyncapi-options.js'
export type { AsyncApiDocument, JsonValue } from './asyncapi.js'
export { memoryAdapter, type MemoryAdapterOptions } from './adapters/memory.js'
export type { ChannelHistory, HistoryOption, ChannelHistoryPage, HistoryMessage, Since } from './history.js'
export type { PresenceOption } from './presence.js'
export { redisAdapter, type RedisAdapterOptions } from './adapters/redis.js'
export type { RedisClusterNode } from './adapters/redis-cluster-options.js'
export * from './errors.js'
export { CloseCode } from './constants.js'
export {
  WireErrorCode, JoinFrame, LeaveFrame, ActionFrame,
  type ClientFrame, type ServerFrame, type WelcomeFrame, type JoinedFrame, type LeftFrame, type AckFrame,
  type ErrorFrame, type MessageFrame, type ValidationDetail, type RequestId, type ResetFrame, type PresenceFrame,
  type PresenceDiffFrame, type PresenceMemberFrame, StreamPosition as StreamPositionSchema
} from './protocol.js'
