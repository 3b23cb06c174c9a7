/**
 * The types around a connection: the view given to application code (`RealtimeConnection`) and what every
 * connection of one plugin instance shares (`ConnectionContext`). The lifecycle itself is in `connection.ts`.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { ActionPayload } from './actions.js'
import type { RealtimeAdapter } from './adapters/adapter.js'
import type { ChannelRegistry } from './channels.js'
import type { Connection } from './connection.js'
import type { Counters, Inflight } from './counters.js'
import type { Deflater } from './deflate.js'
import type { RegisteredActions } from './index.js'
import type { Metrics } from './metrics.js'
import type { ResolvedOptions } from './options.js'

/**
 * The view of a connection given to hooks (`onConnect`, `onJoin`, ...), `authorize*` callbacks, action handlers and
 * `app.realtime.connections()`. `Auth` is what `authenticate` returns.
 */
export interface RealtimeConnection<Auth = unknown> {
  /** Unique per connection (a UUID), also across nodes and reconnects. */
  readonly id: string
  /** The deviceId of this connection (given by the client, by `authenticate`, or assigned). */
  readonly deviceId: string
  /** What `authenticate` returned for this connection, or `undefined` without `authenticate`. */
  readonly auth: Auth
  /** Channels this connection has joined. */
  readonly channels: ReadonlySet<string>
  /**
   * Sends `action` with `payload` to this socket only, as a message frame without `channel` and with `from: null`
   * (like `sendToDevice`). Dropped when the socket is no longer open.
   * @throws FST_REALTIME_UNKNOWN_ACTION, FST_REALTIME_VALIDATION_FAILED (with `details`)
   */
  send: <K extends keyof RegisteredActions & string>(action: K, payload: ActionPayload<RegisteredActions, K>) => void
  /**
   * Joins this connection (only) to `channel`, server-side: no `authorizeJoin`, no channel limit; the client gets
   * an unsolicited `{"type":"joined","channel"}`. Resolves once the subscription is active (at once when already
   * joined or closed). Rejects with FST_REALTIME_INVALID_CHANNEL or the adapter's error (FST_REALTIME_UNAVAILABLE).
   */
  join: (channel: string) => Promise<void>
  /**
   * Removes this connection (only) from `channel`; the client gets an unsolicited `{"type":"left","channel"}` (nothing
   * when it was not joined). Rejects with FST_REALTIME_INVALID_CHANNEL.
   */
  leave: (channel: string) => Promise<void>
  /** Closes the connection with a close code (default 1000) and a reason of at most 123 bytes. */
  close: (code?: number, reason?: string) => void
}

/** What every connection of one plugin instance shares. */
export interface ConnectionContext {
  adapter: RealtimeAdapter
  registry: ChannelRegistry
  options: ResolvedOptions
  log: FastifyBaseLogger
  connections: Set<Connection>
  counters: Counters
  inflight: Inflight
  /** Prometheus metrics, or `NO_METRICS` (every method a no-op) when the `metrics` option is off. */
  metrics: Metrics
  /** The node's permessage-deflate compressor, used by the connections that negotiated the extension. */
  deflater: Deflater
}
