/**
 * The `handshakeTimeout` option: an upgrade that has not completed in time is closed (slowloris on the WebSocket
 * path). Two phases, each with the mechanism Node already has, no timer of our own:
 *
 * - Receiving the request headers: Node's HTTP server `headersTimeout`, checked every `connectionsCheckingInterval`
 *   (the server answers 408 and closes). Until its headers are in, a request has no path, so this bound applies to
 *   every request of the server: it is lowered to `handshakeTimeout`, never raised.
 * - From the `upgrade` event to the 101 (the app's hooks, `authenticate`): Node hands the socket over and times
 *   nothing any more; the socket's own idle timeout (`socket.setTimeout`) bounds it. `ws` clears it when it takes
 *   the socket over (`setSocket`), so an upgraded connection is never affected.
 */
import type { Server } from 'node:http'
import type { Duplex } from 'node:stream'

/** Node's HTTP server fields read here (`connectionsCheckingInterval` is read when the server starts listening). */
interface TimedServer { headersTimeout?: number, connectionsCheckingInterval?: number, listening?: boolean }

/** Servers already bound: a second plugin instance on the same server keeps the first one's bound. */
const bound = new WeakSet<Server>()

/** Destroys a socket whose upgrade did not complete in time; shared by every socket (no closure per handshake). */
function onTimeout (this: Duplex): void {
  this.destroy()
}

/**
 * Bounds every WebSocket upgrade of `server` to `timeout` ms (0: no bound): lowers `headersTimeout` (and the
 * interval at which Node checks it, to a quarter of `timeout`, so a slow client is closed between `timeout` and
 * 1.25 `timeout` after it connected) and arms the socket's idle timeout on each `upgrade` event, before any other
 * listener. A server without these fields (HTTP/2) is left alone; a server is bound once (the first value wins).
 */
export function boundHandshakes (server: Server, timeout: number): void {
  if (timeout === 0 || bound.has(server)) return
  bound.add(server)
  const timed = server as TimedServer
  if (typeof timed.headersTimeout === 'number' && (timed.headersTimeout === 0 || timed.headersTimeout > timeout)) {
    timed.headersTimeout = timeout
    const every = Math.max(1, Math.ceil(timeout / 4))
    if (typeof timed.connectionsCheckingInterval === 'number' && timed.connectionsCheckingInterval > every) {
      timed.connectionsCheckingInterval = every
    }
  }
  server.prependListener('upgrade', (_request, socket: Duplex & { setTimeout?: (ms: number) => unknown }) => {
    if (typeof socket.setTimeout !== 'function') return // not a net.Socket: nothing to time
    socket.setTimeout(timeout)
    socket.on('timeout', onTimeout)
  })
}

/** Removes the listener armed by `boundHandshakes` once `ws` owns the socket (its idle timeout is already off). */
export function handshakeDone (socket: Duplex | undefined): void {
  socket?.off('timeout', onTimeout)
}
