/**
 * The embedded in-memory adapter: one process, no I/O. The default of the plugin.
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { MessageHandler, RealtimeAdapter } from './adapter.js'
import { FST_REALTIME_ADAPTER_CLOSED } from '../errors.js'
import { callHandlers } from './handlers.js'

/**
 * Creates an in-memory adapter: deliveries reach the subscribers of this process only, synchronously and in
 * publish order, before `publish()` resolves. Use `redisAdapter()` to fan out across several nodes.
 *
 * @returns a `RealtimeAdapter`; after `close()`, `subscribe`/`publish` reject with `FST_REALTIME_ADAPTER_CLOSED`.
 */
export function memoryAdapter (): RealtimeAdapter {
  const topics = new Map<string, Set<MessageHandler>>()
  let closed = false
  let log: FastifyBaseLogger | undefined

  return {
    init (fastify: FastifyInstance) {
      log = fastify.log
    },
    status () {
      return closed ? 'closed' : 'ready'
    },
    async subscribe (topic, handler) {
      if (closed) throw new FST_REALTIME_ADAPTER_CLOSED()
      let handlers = topics.get(topic)
      if (handlers === undefined) {
        handlers = new Set()
        topics.set(topic, handlers)
      }
      handlers.add(handler)
    },
    async unsubscribe (topic, handler) {
      const handlers = topics.get(topic)
      if (handlers === undefined) return
      handlers.delete(handler)
      if (handlers.size === 0) topics.delete(topic)
    },
    async publish (topic, message) {
      if (closed) throw new FST_REALTIME_ADAPTER_CLOSED()
      const handlers = topics.get(topic)
      if (handlers !== undefined) callHandlers(handlers, message, log)
    },
    async close () {
      closed = true
      topics.clear()
    }
  }
}
