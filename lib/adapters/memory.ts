/**
 * The embedded in-memory adapter: one process, no I/O. The default of the plugin.
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { MessageHandler, RealtimeAdapter } from './adapter.js'
import type { StreamPosition } from './history.js'
import { DEFAULT_HISTORY_META_TTL } from '../constants.js'
import { FST_REALTIME_ADAPTER_CLOSED } from '../errors.js'
import { integerOption } from '../option-checks.js'
import { callHandlers } from './handlers.js'
import { memoryHistory } from './memory-history.js'
import { memoryPresence } from './memory-presence.js'

/** Options of `memoryAdapter()`. */
export interface MemoryAdapterOptions {
  /**
   * Time in ms a topic's stream position (epoch and offset) is kept after its last publish or read; past it the
   * topic starts a new epoch. Default 2592000000 (30 days).
   */
  historyMetaTtl?: number
}

/**
 * Creates an in-memory adapter: deliveries reach the subscribers of this process only, synchronously and in
 * publish order, before `publish()` resolves. Use `redisAdapter()` to fan out across several nodes.
 *
 * It has both capabilities: `history` (a ring buffer per topic, a random epoch per stream, so a restarted process
 * never reuses a position) and `presence` (maps of this process's members).
 *
 * @throws FST_REALTIME_INVALID_OPTION when `historyMetaTtl` is not an integer >= 1.
 * @returns a `RealtimeAdapter`; after `close()`, `subscribe`/`publish` reject with `FST_REALTIME_ADAPTER_CLOSED`.
 */
export function memoryAdapter (options: MemoryAdapterOptions = {}): RealtimeAdapter {
  const metaTtl = integerOption(options.historyMetaTtl, DEFAULT_HISTORY_META_TTL, 'memoryAdapter historyMetaTtl (ms)', 1)
  // A topic's handler, or a Set of them when there are several: most topics (a deviceId's) have one subscriber.
  const topics = new Map<string, MessageHandler | Set<MessageHandler>>()
  let closed = false
  let log: FastifyBaseLogger | undefined
  const isClosed = (): boolean => closed
  const deliver = (topic: string, message: string, position: StreamPosition | undefined): void => {
    const handlers = topics.get(topic)
    if (handlers !== undefined) callHandlers(handlers, message, position, log)
  }

  const history = memoryHistory({ closed: isClosed, deliver }, metaTtl)
  const presence = memoryPresence(isClosed, () => log)

  return {
    init (fastify: FastifyInstance) {
      log = fastify.log
    },
    status () {
      return closed ? 'closed' : 'ready'
    },
    async subscribe (topic, handler) {
      if (closed) throw new FST_REALTIME_ADAPTER_CLOSED()
      const handlers = topics.get(topic)
      if (handlers === undefined) topics.set(topic, handler)
      else if (typeof handlers !== 'function') handlers.add(handler)
      else if (handlers !== handler) topics.set(topic, new Set([handlers, handler]))
    },
    async unsubscribe (topic, handler) {
      const handlers = topics.get(topic)
      if (handlers === undefined) return
      if (typeof handlers === 'function') {
        if (handlers === handler) topics.delete(topic)
        return
      }
      handlers.delete(handler)
      if (handlers.size === 0) topics.delete(topic)
    },
    async publish (topic, message) {
      if (closed) throw new FST_REALTIME_ADAPTER_CLOSED()
      deliver(topic, message, undefined)
    },
    async close () {
      if (closed) return
      presence.close() // own members first, their leaves to the listener
      closed = true
      topics.clear()
      history.close()
    },
    history: { publish: history.publish, read: history.read },
    presence: { add: presence.add, remove: presence.remove, list: presence.list, onChange: presence.onChange }
  }
}
