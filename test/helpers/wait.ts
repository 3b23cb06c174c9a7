import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'

/**
 * Returns a promise that resolves when every server-side socket open right now has emitted 'close' (and so the
 * plugin has run its cleanup, whose listener was added first). Call it before closing the clients.
 */
export function serverSocketsClosed (app: FastifyInstance): Promise<unknown> {
  return Promise.all([...app.websocketServer.clients].map((ws) => once(ws, 'close')))
}

/**
 * Waits for a state that has no event of its own (e.g. an adapter's connection state), checking every 10 ms,
 * and fails after `timeout` ms. Bounded: never a fixed sleep.
 */
export async function until (predicate: () => boolean, timeout = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeout
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
