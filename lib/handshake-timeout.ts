/**
 * The `handshakeTimeout` option: an upgrade that has not completed in time is closed (slowloris on the WebSocket
 * path). Two phases:
 *
 * - Receiving the request headers: Node's HTTP server `headersTimeout`, checked every `connectionsCheckingInterval`
 *   (the server answers 408 and closes). Until its headers are in, a request has no path, so this bound applies to
 *   every request of the server: it is lowered to `handshakeTimeout`, never raised.
 * - From the `upgrade` event to the 101 (the app's hooks, `authenticate`): Node hands the socket over and times
 *   nothing any more. One unref'd timer per upgrade, kept on the request and cleared once `ws` owns the socket.
 *   Not `socket.setTimeout`: `ws` turns it off, but the socket keeps the cleared timer and its bound callback
 *   (~0.2 KiB) for the whole life of the connection.
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'

/** Node's HTTP server fields read here (`connectionsCheckingInterval` is read when the server starts listening). */
interface TimedServer { headersTimeout?: number, connectionsCheckingInterval?: number }

const kTimer = Symbol('fastify-realtime.handshakeTimer')
type TimedRequest = IncomingMessage & { [kTimer]?: NodeJS.Timeout }

/** Servers already bound: a second plugin instance on the same server keeps the first one's bound. */
const bound = new WeakSet<Server>()

/** Destroys a socket whose upgrade did not complete in time (a no-op once it is closed). */
function expire (socket: Duplex): void {
  socket.destroy()
}

/**
 * Bounds every WebSocket upgrade of `server` to `timeout` ms (0: no bound): lowers `headersTimeout` (and the
 * interval at which Node checks it, to `timeout`, so a slow client is closed between `timeout` and twice `timeout`
 * after it connected) and arms a timer on each `upgrade` event, before any other listener. A server
 * without these fields (HTTP/2) keeps its own; a server is bound once (the first value wins).
 */
export function boundHandshakes (server: Server, timeout: number): void {
  if (timeout === 0 || bound.has(server)) return
  bound.add(server)
  const timed = server as TimedServer
  if (typeof timed.headersTimeout === 'number' && (timed.headersTimeout === 0 || timed.headersTimeout > timeout)) {
    timed.headersTimeout = timeout
    // Each check walks every connection of the server, upgraded ones included (~0.6 µs each, measured): checking
    // once per `timeout` keeps that under 1 % of a core at 100,000 connections and 10 s.
    if (typeof timed.connectionsCheckingInterval === 'number' && timed.connectionsCheckingInterval > timeout) {
      timed.connectionsCheckingInterval = timeout
    }
  }
  server.prependListener('upgrade', (request: TimedRequest, socket: Duplex) => {
    request[kTimer] = setTimeout(expire, timeout, socket).unref()
  })
}

/** Clears the timer armed by `boundHandshakes` once `ws` owns the request's socket (none: nothing to do). */
export function handshakeDone (request: IncomingMessage): void {
  clearTimeout((request as TimedRequest)[kTimer])
}
