import type { FastifyBaseLogger } from 'fastify'
import type { MessageHandler } from './adapter.js'
import type { StreamPosition } from './history.js'

/**
 * Calls every handler of a topic (one handler, or several) with one message. A throwing handler is logged and
 * skipped, so one bad subscriber can neither stop the others nor crash the adapter's event loop.
 */
export function callHandlers (
  handlers: MessageHandler | Iterable<MessageHandler>, message: string, position: StreamPosition | undefined, log: FastifyBaseLogger | undefined
): void {
  if (typeof handlers === 'function') {
    callHandler(handlers, message, position, log)
    return
  }
  for (const handler of handlers) callHandler(handler, message, position, log)
}

function callHandler (handler: MessageHandler, message: string, position: StreamPosition | undefined, log: FastifyBaseLogger | undefined): void {
  try {
    handler(message, position)
  } catch (err) {
    log?.error({ err }, 'fastify-realtime: adapter message handler threw')
  }
}
