import t from 'tap'
import { once } from 'node:events'
import { memoryAdapter, type RealtimeAdapter } from '../lib/index.js'
import { connect, refusedStatus } from './helpers/client.js'
import { startServer } from './helpers/server.js'
import { serverSockets, until } from './helpers/wait.js'

t.test('default origin check: same host:port passes, any other Origin is refused with 403', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const port = new URL(url).port
  const c = await connect(url, { headers: { origin: `http://127.0.0.1:${port}` } })
  t.equal(typeof c.deviceId, 'string', 'same origin')
  const s = await connect(url, { headers: { origin: `https://127.0.0.1:${port}` } })
  t.equal(typeof s.deviceId, 'string', 'scheme is ignored')
  const n = await connect(url)
  t.equal(typeof n.deviceId, 'string', 'no Origin (non-browser client) passes')
  t.equal(await refusedStatus(url, { headers: { origin: 'http://evil.example' } }), 403)
  t.equal(await refusedStatus(url, { headers: { origin: `http://localhost:${port}` } }), 403, 'localhost is not 127.0.0.1')
  t.equal(await refusedStatus(url, { headers: { origin: `http://127.0.0.1:${Number(port) + 1}` } }), 403, 'other port')
  t.equal(await refusedStatus(url, { headers: { origin: 'null' } }), 403, 'Origin: null')
  await Promise.all([c.close(), s.close(), n.close()])
})

t.test('allowedOrigins: a list or a function', async (t) => {
  const list = await startServer({ allowedOrigins: ['https://app.example.com'] })
  const fn = await startServer({ allowedOrigins: (origin) => origin.endsWith('.trusted.test') })
  t.teardown(() => Promise.all([list.app.close(), fn.app.close()]))
  const a = await connect(list.url, { headers: { origin: 'https://app.example.com' } })
  t.equal(await refusedStatus(list.url, { headers: { origin: 'https://other.example.com' } }), 403)
  const b = await connect(fn.url, { headers: { origin: 'https://x.trusted.test' } })
  t.equal(await refusedStatus(fn.url, { headers: { origin: 'https://trusted.test.evil' } }), 403)
  await Promise.all([a.close(), b.close()])
})

t.test('maxConnections: 503 before the 101 once the node is full', async (t) => {
  const { app, url } = await startServer({ maxConnections: 2 })
  t.teardown(() => app.close())
  const a = await connect(url)
  const b = await connect(url)
  t.equal(await refusedStatus(url), 503)
  const closed = once(serverSockets(app)[0]!, 'close')
  await a.close()
  await closed
  const c = await connect(url)
  t.equal(typeof c.deviceId, 'string', 'a slot freed by a close is usable again')
  await Promise.all([b.close(), c.close()])
})

t.test('authorizePublish: sync and async verdicts, order kept, a throw is INTERNAL', async (t) => {
  const { app, url } = await startServer({
    authorizePublish: (connection, channel, action) => {
      if (channel === 'readonly') return false
      if (channel === 'broken') throw new Error('hook bug')
      if (channel === 'slow') return new Promise((resolve) => setImmediate(() => resolve(connection.deviceId !== 'muted')))
      return action === 'chat.message'
    }
  })
  t.teardown(() => app.close())
  const c = await connect(`${url}?deviceId=writer`)
  for (const ch of ['readonly', 'broken', 'slow', 'open']) await c.join(ch)
  const act = (channel: string, id: string, action = 'chat.message') => c.request({ type: 'action', channel, action, payload: action === 'chat.message' ? { text: id } : { x: 1, y: 2 }, id })
  t.match(await act('readonly', 'r'), { code: 'FORBIDDEN', id: 'r' })
  t.match(await act('broken', 'b'), { code: 'INTERNAL', id: 'b' })
  t.match(await act('open', 'o', 'cursor.move'), { code: 'FORBIDDEN', id: 'o' })
  t.same(await act('open', 'ok'), { type: 'ack', id: 'ok' })
  // An async verdict delays that action; the ones after it wait, so deliveries keep frame order.
  c.send({ type: 'action', channel: 'slow', action: 'chat.message', payload: { text: 's1' } })
  c.send({ type: 'action', channel: 'open', action: 'chat.message', payload: { text: 'o2' } })
  c.send({ type: 'action', channel: 'slow', action: 'chat.message', payload: { text: 's3' } })
  const texts: string[] = []
  while (texts.length < 4) texts.push((await c.next({ type: 'message' })).payload.text)
  t.same(texts.slice(1), ['s1', 'o2', 's3'])
  await c.close()
})

/** A real adapter whose publish is slow (a far-away broker): lets a test hold a publish in flight. */
function slowAdapter (): RealtimeAdapter & { release: () => void } {
  const inner = memoryAdapter()
  const held: Array<() => void> = []
  return {
    ...inner,
    async publish (topic, message) {
      await new Promise<void>((resolve) => held.push(resolve))
      await inner.publish(topic, message)
    },
    release () { for (const r of held.splice(0)) r() }
  }
}

t.test('shutdown: an action already handed to the adapter is acknowledged before the 1001', async (t) => {
  const adapter = slowAdapter()
  const { app, url } = await startServer({ adapter })
  const c = await connect(url)
  await c.join('room')
  c.send({ type: 'action', channel: 'room', action: 'chat.message', payload: { text: 'in flight' }, id: 'last' })
  await until(() => app.realtime.stats().inflight === 1, 5000, 'the publish to be in flight')
  const closing = app.close()
  await until(() => app.realtime.health().status === 'degraded', 5000, 'closing state')
  adapter.release()
  t.same(await c.next({ type: 'ack' }), { type: 'ack', id: 'last' })
  t.same(await c.closed, { code: 1001, reason: 'server shutting down' })
  await closing
  t.same(c.frames.filter((f) => f.type === 'message').map((f) => f.payload.text), ['in flight'])
})

t.test('health() on the memory adapter; healthRoute serves it', async (t) => {
  const { app, base, url } = await startServer({ healthRoute: '/healthz' })
  t.teardown(() => app.close())
  const c = await connect(url)
  await c.join('one')
  const res = await fetch(`${base}/healthz`)
  t.equal(res.status, 200)
  t.same(await res.json(), { status: 'ok', adapter: 'ready', connections: 1, channels: 1 })
  await c.close()
})

t.test('refused handshakes carry a JSON body without internals', async (t) => {
  const { app, base } = await startServer({ authenticate: () => { throw new Error('db password is hunter2') } })
  t.teardown(() => app.close())
  // fetch cannot send an upgrade request: speak raw HTTP to read the refusal's body.
  const net = await import('node:net')
  const socket = net.connect(Number(new URL(base).port), '127.0.0.1')
  socket.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n')
  let raw = ''
  socket.on('data', (d) => { raw += d.toString() })
  await once(socket, 'close')
  t.match(raw, /^HTTP\/1\.1 401/)
  t.match(raw, /"message":"Unauthorized"/)
  t.notMatch(raw, /hunter2|"stack"/)
})

t.test('@fastify/rate-limit limits upgrade requests per IP (429 before the 101)', async (t) => {
  const rateLimit = (await import('@fastify/rate-limit')).default
  const { app, url } = await startServer({}, async (app) => {
    await app.register(rateLimit, { max: 2, timeWindow: 60_000 })
  })
  t.teardown(() => app.close())
  const a = await connect(url)
  const b = await connect(url)
  t.equal(await refusedStatus(url), 429, 'the third upgrade from this IP in the window')
  await Promise.all([a.close(), b.close()])
})

t.test('health() reports the adapter closed after app.close(), even for an adapter without status()', async (t) => {
  const { status: _status, ...withoutStatus } = memoryAdapter()
  const { app } = await startServer({ adapter: withoutStatus })
  t.equal(app.realtime.health().adapter, 'ready')
  await app.close()
  t.match(app.realtime.health(), { status: 'degraded', adapter: 'closed' })
})
