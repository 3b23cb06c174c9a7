import type { FastifyBaseLogger } from 'fastify'
import type { MessageHandler } from './adapter.js'
import type { StreamPosition } from './history.js'

/**
 * Calls every handler of a topic with one message. A throwing handler is logged and skipped, so one bad
 * subscriber can neither stop the others nor crash the adapter's event loop.
 */
export function callHandlers (
  handlers: Iterable<MessageHandler>, message: string, position: StreamPosition | undefined, log: FastifyBaseLogger | undefined
): void {
  for (const handler of handlers) {
    try {
      handler(message, position)
    } catch (err) {
      log?.error({ err }, 'fastify-realtime: adapter message handler threw')
    }
  }
}
