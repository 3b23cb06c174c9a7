import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'

/**
 * Returns a promise that resolves when every server-side socket open right now has emitted 'close' (and so the
 * plugin has run its cleanup, whose listener was added first). Call it before closing the clients.
 */
export function serverSocketsClosed (app: FastifyInstance): Promise<unknown> {
  return Promise.all([...app.websocketServer.clients].map((ws) => once(ws, 'close')))
}
