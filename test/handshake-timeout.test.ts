/**
 * handshakeTimeout: an upgrade that has not completed in time is closed, on real TCP (a net.Socket writing half an
 * upgrade request, a full request held up by a slow `authenticate`); upgraded connections and neighbours are not
 * affected.
 */
import { once } from 'node:events'
import { connect as tcpConnect, type Socket } from 'node:net'
import t from 'tap'
import Fastify from 'fastify'
import realtimePlugin from '../lib/index.js'
import { connect, TestClient } from './helpers/client.js'
import { startServer } from './helpers/server.js'
import { until } from './helpers/wait.js'

const TIMEOUT = 400
/** Upper bound of a close, far above TIMEOUT * 2 so that a loaded machine stays green. */
const BOUND = 15_000

/** Opens a TCP connection to the server and writes `text`; resolves once written. */
async function rawSocket (base: string, text: string): Promise<{ socket: Socket, received: () => string }> {
  const { hostname, port } = new URL(base)
  const socket = tcpConnect(Number(port), hostname)
  let data = ''
  socket.on('data', (chunk: Buffer) => { data += chunk.toString() })
  socket.on('error', () => {})
  await once(socket, 'connect')
  socket.write(text)
  return { socket, received: () => data }
}

/** Resolves with the ms from now until `socket` closes (rejects past BOUND). */
async function closedWithin (socket: Socket): Promise<number> {
  const started = performance.now()
  const timer = setTimeout(() => socket.destroy(new Error('still open')), BOUND)
  const [hadError] = await once(socket, 'close') as [boolean]
  clearTimeout(timer)
  if (hadError && socket.errored?.message === 'still open') throw new Error(`socket still open after ${BOUND} ms`)
  return performance.now() - started
}

t.test('half an upgrade request is answered 408 and closed; neighbours are not affected', async (t) => {
  const { app, url, base } = await startServer({ handshakeTimeout: TIMEOUT, heartbeatInterval: 0 })
  t.teardown(() => app.close())
  t.equal(app.server.headersTimeout, TIMEOUT, 'the server headersTimeout is lowered to handshakeTimeout')
  const before = await connect(url)
  await before.join('room')
  const { socket, received } = await rawSocket(base, 'GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n')
  const closing = closedWithin(socket)
  // While the slow request hangs, a neighbour connects and talks as usual.
  const during = await connect(url)
  await during.join('room')
  during.send({ type: 'action', channel: 'room', action: 'chat.message', payload: { text: 'hi' }, id: 1 })
  t.match(await before.next({ type: 'message' }), { payload: { text: 'hi' } })
  const elapsed = await closing
  t.ok(elapsed >= TIMEOUT * 0.8, `closed after ${elapsed.toFixed(0)} ms, not before the timeout`)
  t.match(received(), /^HTTP\/1\.1 408 /, 'Node answers 408 Request Timeout')
  // The upgraded connections outlived the timeout: still open and working.
  during.send({ type: 'action', channel: 'room', action: 'chat.message', payload: { text: 'later' }, id: 2 })
  t.match(await before.next({ type: 'message' }), { payload: { text: 'later' } })
  t.equal(before.ws.readyState, before.ws.OPEN)
  await before.close()
  await during.close()
})

t.test('an upgrade held up after its headers (slow authenticate) is closed and not counted any more', async (t) => {
  let slow = true
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  let authenticated = 0
  const { app, url } = await startServer({
    handshakeTimeout: TIMEOUT,
    heartbeatInterval: 0,
    maxConnections: 1,
    async authenticate () {
      if (slow) {
        slow = false
        await held
      }
      authenticated++
      return {}
    }
  })
  t.teardown(() => app.close())
  const stuck = new TestClient(url)
  const { code } = await stuck.closed
  t.equal(code, 1006, 'the server closed the socket before any 101')
  release()
  await until(() => authenticated === 1, BOUND, 'the held authenticate to finish')
  // With maxConnections 1, an abandoned handshake still counted would refuse this one with 503.
  const next = await connect(url)
  t.equal(next.ws.readyState, next.ws.OPEN)
  await next.close()
})

t.test('handshakeTimeout 0 leaves the server timeouts alone; a lower headersTimeout is kept', async (t) => {
  const off = Fastify()
  t.teardown(() => off.close())
  const nodeDefault = off.server.headersTimeout
  await off.register(realtimePlugin, { handshakeTimeout: 0, heartbeatInterval: 0 })
  await off.ready()
  t.equal(off.server.headersTimeout, nodeDefault)

  const low = Fastify()
  t.teardown(() => low.close())
  low.server.headersTimeout = 100
  await low.register(realtimePlugin, { heartbeatInterval: 0 })
  await low.ready()
  t.equal(low.server.headersTimeout, 100, 'never raised')

  const dflt = Fastify()
  t.teardown(() => dflt.close())
  await dflt.register(realtimePlugin, { heartbeatInterval: 0 })
  await dflt.ready()
  t.equal(dflt.server.headersTimeout, 10_000, 'default 10 s')
})
