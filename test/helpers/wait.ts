import type { FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import type { Connection } from '../../lib/connection.js'

/**
 * Returns a promise that resolves when every connection open right now has closed and its hooks have settled (the
 * plugin's cleanup has run). Call it before closing the clients.
 */
export function serverSocketsClosed (app: FastifyInstance): Promise<unknown> {
  return Promise.all([...app.realtime.connections()].map((connection) => (connection as Connection).whenClosed()))
}

const tracked = new WeakMap<object, Set<WebSocket>>()

/**
 * Keeps the open server-side sockets of `app` from now on (the plugin turns ws's `clientTracking` off, so
 * `websocketServer.clients` is undefined). Call it before clients connect; `serverSockets(app)` reads them.
 */
export function trackServerSockets (app: FastifyInstance): void {
  if (tracked.has(app)) return
  const sockets = new Set<WebSocket>()
  tracked.set(app, sockets)
  app.websocketServer.on('connection', (socket: WebSocket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
}

/** The open server-side sockets of `app` (tracked since `trackServerSockets`; `startServer` calls it). */
export function serverSockets (app: FastifyInstance): WebSocket[] {
  const sockets = tracked.get(app)
  if (sockets === undefined) throw new Error('serverSockets: call trackServerSockets(app) before clients connect')
  return [...sockets]
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
