import { once } from 'node:events'
import t from 'tap'
import Fastify from 'fastify'
import WebSocket from 'ws'
import realtimePlugin, { memoryAdapter } from '../lib/index.js'
import { connect } from './helpers/client.js'
import { startServer } from './helpers/server.js'
import { serverSocketsClosed, until } from './helpers/wait.js'

t.test('join, leave and action replies echo the request id', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const c = await connect(`${url}?deviceId=d1`)
  t.same(await c.request({ type: 'join', channel: 'room:1', id: 'j1' }), { type: 'joined', channel: 'room:1', id: 'j1' })
  t.same(await c.request({ type: 'join', channel: 'room:1', id: 7 }), { type: 'joined', channel: 'room:1', id: 7 }, 'joining twice is idempotent')
  t.same(await c.request({ type: 'action', channel: 'room:1', action: 'chat.message', payload: { text: 'hi' }, id: 0 }), { type: 'ack', id: 0 })
  t.same(await c.next({ type: 'message' }), { type: 'message', channel: 'room:1', action: 'chat.message', payload: { text: 'hi' }, from: 'd1' })
  t.same(await c.request({ type: 'leave', channel: 'room:1', id: 'l1' }), { type: 'left', channel: 'room:1', id: 'l1' })
  t.same(await c.request({ type: 'leave', channel: 'room:1', id: 'l2' }), { type: 'left', channel: 'room:1', id: 'l2' }, 'leaving twice is idempotent')
  c.send({ type: 'join', channel: 'no-id' })
  t.same(await c.next({ type: 'joined' }), { type: 'joined', channel: 'no-id' }, 'no id, no id in the reply')
  await c.close()
})

t.test('fan-out reaches every member, sender included, and no non-member', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const members = await Promise.all([1, 2, 3].map((i) => connect(`${url}?deviceId=m${i}`)))
  const outsider = await connect(`${url}?deviceId=out`)
  await Promise.all(members.map((m) => m.join('room')))
  await outsider.join('other')
  members[0]!.send({ type: 'action', channel: 'room', action: 'chat.message', payload: { text: 'to all' } })
  for (const m of members) {
    t.same(await m.next({ type: 'message' }), { type: 'message', channel: 'room', action: 'chat.message', payload: { text: 'to all' }, from: 'm1' })
  }
  // The outsider's own delivery is ordered after anything it could have wrongly received.
  outsider.send({ type: 'action', channel: 'other', action: 'chat.message', payload: { text: 'mine' }, id: 1 })
  await outsider.next({ type: 'ack' })
  t.same(outsider.frames, [{ type: 'message', channel: 'other', action: 'chat.message', payload: { text: 'mine' }, from: 'out' }])
  await Promise.all([...members, outsider].map((c) => c.close()))
})

t.test('messages from one publisher arrive in publish order', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const pub = await connect(url)
  const sub = await connect(url)
  await pub.join('ordered')
  await sub.join('ordered')
  const n = 300
  for (let i = 0; i < n; i++) pub.send({ type: 'action', channel: 'ordered', action: 'cursor.move', payload: { x: i, y: 0 } })
  const seen: number[] = []
  for (let i = 0; i < n; i++) seen.push((await sub.next({ type: 'message' })).payload.x)
  t.same(seen, Array.from({ length: n }, (_, i) => i))
  await Promise.all([pub.close(), sub.close()])
})

t.test('a join pipelined before an action is processed first', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const c = await connect(url)
  c.send({ type: 'join', channel: 'fast', id: 1 })
  c.send({ type: 'action', channel: 'fast', action: 'chat.message', payload: { text: 'x' }, id: 2 })
  t.same(await c.next({ id: 1 }), { type: 'joined', channel: 'fast', id: 1 })
  t.same(await c.next({ id: 2 }), { type: 'ack', id: 2 })
  await c.close()
})

t.test('error replies: every code, with the id, connection kept open', async (t) => {
  const { app, url } = await startServer({
    maxChannelsPerConnection: 2,
    authorizeJoin: (_c, channel) => {
      if (channel === 'boom') throw new Error('secret internal detail')
      return !channel.startsWith('private:')
    }
  })
  t.teardown(() => app.close())
  const c = await connect(url)
  const err = (frame: Record<string, unknown>) => c.request(frame as any)

  t.match(await err({ type: 'action', channel: 'room', action: 'nope', payload: {}, id: 1 }), { type: 'error', code: 'UNKNOWN_ACTION', id: 1 })
  t.match(await err({ type: 'action', channel: 'room', action: 'chat.message', payload: { text: 'x' }, id: 2 }), { type: 'error', code: 'NOT_JOINED', id: 2 })
  t.match(await err({ type: 'join', channel: 'private:x', id: 3 }), { type: 'error', code: 'FORBIDDEN', id: 3 })
  const internal = await err({ type: 'join', channel: 'boom', id: 4 })
  t.match(internal, { type: 'error', code: 'INTERNAL', id: 4 })
  t.notMatch(JSON.stringify(internal), /secret/, 'no internal message leaks')
  await c.join('a')
  await c.join('b')
  t.match(await err({ type: 'join', channel: 'c', id: 5 }), { type: 'error', code: 'LIMIT_EXCEEDED', id: 5 })
  const invalid = await err({ type: 'action', channel: 'a', action: 'chat.message', payload: { text: 5, extra: true }, id: 6 })
  t.match(invalid, { type: 'error', code: 'VALIDATION_FAILED', id: 6 })
  t.same(invalid.details.map((d: { path: string }) => d.path).sort(), ['/payload', '/payload/extra', '/payload/text'])
  const missing = await err({ type: 'action', channel: 'a', action: 'chat.message', id: 7 })
  t.match(missing, { code: 'VALIDATION_FAILED', id: 7 })
  const long = await err({ type: 'action', channel: 'a', action: 'chat.message', payload: { text: 'x'.repeat(4097) }, id: 8 })
  t.match(long, { code: 'VALIDATION_FAILED', details: [{ path: '/payload/text' }] })
  t.same(await c.join('a'), { type: 'joined', channel: 'a', id: 'join:a' }, 'still open and usable')
  await c.close()
})

t.test('BAD_REQUEST for malformed frames; other connections undisturbed', async (t) => {
  const { app, url } = await startServer({ maxDepth: 8 })
  t.teardown(() => app.close())
  const c = await connect(url)
  const bystander = await connect(url)
  await bystander.join('calm')
  const bad: Array<[string, string, unknown]> = [
    ['not JSON', '{"type":', undefined],
    ['a JSON array', '[1,2]', undefined],
    ['a JSON string', '"join"', undefined],
    ['null', 'null', undefined],
    ['unknown type', '{"type":"subscribe","channel":"x","id":1}', 1],
    ['inherited type name', '{"type":"toString","id":2}', 2],
    ['missing channel', '{"type":"join","id":3}', 3],
    ['channel with a space', '{"type":"join","channel":"a b","id":4}', 4],
    ['channel with a glob', '{"type":"join","channel":"room*","id":5}', 5],
    ['channel too long', JSON.stringify({ type: 'join', channel: 'c'.repeat(129), id: 6 }), 6],
    ['unknown field', '{"type":"join","channel":"x","id":7,"extra":1}', 7],
    ['negative id', '{"type":"join","channel":"x","id":-1}', undefined],
    ['id too long', JSON.stringify({ type: 'join', channel: 'x', id: 'i'.repeat(65) }), undefined],
    ['__proto__ key', '{"type":"action","channel":"x","action":"chat.message","payload":{"__proto__":{"polluted":1}},"id":8}', undefined],
    ['constructor.prototype', '{"type":"action","channel":"x","action":"chat.message","payload":{"constructor":{"prototype":{"polluted":1}}}}', undefined],
    ['too deep', `{"type":"action","channel":"x","action":"chat.message","payload":${'['.repeat(20)}${']'.repeat(20)}}`, undefined],
    ['empty frame', '', undefined]
  ]
  for (const [name, text, id] of bad) {
    c.send(text)
    const reply = await c.next({ type: 'error' })
    t.equal(reply.code, 'BAD_REQUEST', name)
    t.equal(reply.id, id, `${name}: id echoed when readable`)
  }
  t.equal(({} as any).polluted, undefined, 'no prototype pollution')
  t.same(await bystander.request({ type: 'action', channel: 'calm', action: 'chat.message', payload: { text: 'ok' }, id: 1 }), { type: 'ack', id: 1 })
  t.same(await c.join('still-open'), { type: 'joined', channel: 'still-open', id: 'join:still-open' })
  await Promise.all([c.close(), bystander.close()])
})

t.test('close codes: 1003 for a binary frame, 1009 for a frame over maxPayload', async (t) => {
  const { app, url } = await startServer({ maxPayload: 1024 })
  t.teardown(() => app.close())
  const bin = await connect(url)
  const big = await connect(url)
  const bystander = await connect(url)
  bin.ws.send(Buffer.from([1, 2, 3]))
  t.equal((await bin.closed).code, 1003)
  big.send({ type: 'action', channel: 'x', action: 'chat.message', payload: { text: 'x'.repeat(2000) } })
  t.equal((await big.closed).code, 1009)
  t.same(await bystander.join('fine'), { type: 'joined', channel: 'fine', id: 'join:fine' })
  await bystander.close()
})

t.test('server publish and sendToDevice', async (t) => {
  const adapter = memoryAdapter()
  const { app, url } = await startServer({ adapter })
  t.teardown(() => app.close())
  const a1 = await connect(`${url}?deviceId=alice`)
  const a2 = await connect(`${url}?deviceId=alice`)
  const bob = await connect(`${url}?deviceId=bob`)
  await a1.join('news')
  await bob.join('news')
  await app.realtime.publish('news', 'chat.message', { text: 'from http' })
  const expected = { type: 'message', channel: 'news', action: 'chat.message', payload: { text: 'from http' }, from: null }
  t.same(await a1.next({ type: 'message' }), expected)
  t.same(await bob.next({ type: 'message' }), expected)
  await app.realtime.sendToDevice('alice', 'chat.message', { text: 'only you' })
  const direct = { type: 'message', action: 'chat.message', payload: { text: 'only you' }, from: null }
  t.same(await a1.next({ type: 'message' }), direct)
  t.same(await a2.next({ type: 'message' }), direct, 'every connection of the device')
  await app.realtime.publish('news', 'chat.message', { text: 'marker' })
  t.same((await bob.next({ type: 'message' })).payload, { text: 'marker' }, 'bob got no direct message before the marker')

  // One deviceId connected three times, then twice, to this node: direct messages and control commands reach each.
  const a3 = await connect(`${url}?deviceId=alice`)
  await a2.close()
  const alices = (): number => [...app.realtime.connections()].filter((c) => c.deviceId === 'alice').length
  await until(() => alices() === 2, 15_000, 'the closed connection of alice gone')
  await app.realtime.sendToDevice('alice', 'chat.message', { text: 'still you' })
  const again = { ...direct, payload: { text: 'still you' } }
  t.same(await a1.next((f) => f.type === 'message' && f.payload.text === 'still you'), again)
  t.same(await a3.next({ type: 'message' }), again, 'the newer connection of the device too')
  await app.realtime.disconnect('alice', { code: 4001, reason: 'bye' })
  t.same(await a1.closed, { code: 4001, reason: 'bye' }, 'a control command reaches every connection of the device')
  t.same(await a3.closed, { code: 4001, reason: 'bye' })
  await until(() => alices() === 0, 15_000, 'no connection of alice left')
  await t.resolves(app.realtime.sendToDevice('alice', 'chat.message', { text: 'nobody' }), 'a direct message to a device with no connection is dropped')

  await t.rejects(app.realtime.publish('bad channel', 'chat.message', { text: 'x' }), { code: 'FST_REALTIME_INVALID_CHANNEL' })
  await t.rejects(app.realtime.publish('news', 'nope' as any, {} as any), { code: 'FST_REALTIME_UNKNOWN_ACTION' })
  await t.rejects(app.realtime.publish('news', 'chat.message', { text: 1 } as any), {
    code: 'FST_REALTIME_VALIDATION_FAILED', details: [{ path: '/payload/text' }]
  })
  await t.rejects(app.realtime.sendToDevice('bad id', 'chat.message', { text: 'x' }), { code: 'FST_REALTIME_INVALID_DEVICE_ID' })
  t.equal(app.realtime.adapter, adapter, 'the adapter is exposed')
  await Promise.all([a1.close(), a2.close(), bob.close()])
})

t.test('heartbeat terminates a connection that stops answering pings', async (t) => {
  const { app, url } = await startServer({ heartbeatInterval: 250 })
  t.teardown(() => app.close())
  const silent = await connect(url, { autoPong: false })
  const healthy = await connect(url)
  t.equal((await silent.closed).code, 1006, 'terminated without a close frame')
  t.same(await healthy.join('alive'), { type: 'joined', channel: 'alive', id: 'join:alive' }, 'a ponging client stays')
  await healthy.close()
})

t.test('heartbeat: a client that answers pings with frames instead of pongs stays (any inbound traffic counts)', async (t) => {
  const { app, url } = await startServer({ heartbeatInterval: 150 })
  t.teardown(() => app.close())
  const busy = await connect(url, { autoPong: false })
  const silent = await connect(url, { autoPong: false })
  let pings = 0
  const fourPings = new Promise<void>((resolve) => {
    busy.ws.on('ping', () => {
      pings++
      busy.send({ type: 'join', channel: `tick${pings}`, id: `join:tick${pings}` })
      if (pings === 4) resolve()
    })
  })
  t.equal((await silent.closed).code, 1006, 'the silent client is terminated')
  await fourPings
  t.same(await busy.join('still'), { type: 'joined', channel: 'still', id: 'join:still' }, 'still connected after 4 pings and no pong')
  await busy.close()
})

t.test('heartbeat on injected sockets: pongs keep one, silence terminates the other', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtimePlugin, { heartbeatInterval: 100 })
  await app.ready()
  // Injected sockets hold no handle and the heartbeat timer is unref'd: keep the process up while the test waits.
  const keepAlive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(keepAlive))
  const ponging = await app.injectWS('/ws?deviceId=ponging')
  const silent = await app.injectWS('/ws?deviceId=silent')
  silent.on('ping', () => {}) // injected sockets do not pong by themselves
  let pings = 0
  const threePings = new Promise<void>((resolve) => {
    ponging.on('ping', () => {
      ponging.pong()
      if (++pings === 3) resolve()
    })
  })
  const [code] = await once(silent, 'close')
  t.equal(code, 1006, 'the silent injected socket is terminated')
  await threePings
  t.equal(ponging.readyState, 1, 'the ponging injected socket is still open after 3 pings')
  ponging.terminate()
})

t.test('closing connections leaves nothing behind', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  for (let round = 0; round < 20; round++) {
    const clients = await Promise.all([0, 1, 2].map((i) => connect(`${url}?deviceId=cycle${i}`)))
    await Promise.all(clients.map((c, i) => c.join(`room:${i % 2}`)))
    t.equal(app.realtime.stats().connections, 3)
    const cleaned = serverSocketsClosed(app)
    await Promise.all(clients.map((c) => c.close()))
    await cleaned
  }
  t.match(app.realtime.stats(), { connections: 0, topics: 0 })
})

t.test('app.close() sends 1001 to every connection', async (t) => {
  const { app, url } = await startServer()
  const clients = await Promise.all([1, 2, 3].map(() => connect(url)))
  await clients[0]!.join('x')
  await app.close()
  for (const c of clients) t.same(await c.closed, { code: 1001, reason: 'server shutting down' })
})

t.test('a stalled client that ignores the close handshake is destroyed after closeTimeout', async (t) => {
  const { app, url } = await startServer({ closeTimeout: 100 })
  const c = await connect(url)
  // Stop reading: the close frame is never answered.
  ;(c.ws as unknown as { _socket: import('node:net').Socket })._socket.pause()
  const started = Date.now()
  await app.close()
  t.ok(Date.now() - started < 5000, 'app.close() does not wait for the peer forever')
  ;(c.ws as unknown as { _socket: import('node:net').Socket })._socket.resume()
  t.ok([1001, 1006].includes((await c.closed).code))
})

t.test('a client that claims no upgrade and speaks ws later is handled', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const ws = new WebSocket(url)
  await new Promise((resolve) => ws.once('open', resolve))
  ws.close(1000)
  await new Promise((resolve) => ws.once('close', resolve))
  t.pass('open and close without frames is fine')
})

t.test('deliveries stay correct when the app enabled permessage-deflate (frames compressed by the plugin, see deflate.test.ts)', async (t) => {
  const websocket = (await import('@fastify/websocket')).default
  const { app, url } = await startServer({}, async (app) => {
    await app.register(websocket, { options: { perMessageDeflate: true, maxPayload: 65536 } })
  })
  t.teardown(() => app.close())
  const a = await connect(url, { perMessageDeflate: true })
  const b = await connect(url, { perMessageDeflate: true })
  t.match(a.ws.extensions, /permessage-deflate/, 'negotiated')
  await a.join('z')
  await b.join('z')
  const text = 'compressible '.repeat(200)
  a.send({ type: 'action', channel: 'z', action: 'chat.message', payload: { text } })
  t.same((await b.next({ type: 'message' })).payload, { text })
  t.same((await a.next({ type: 'message' })).payload, { text })
  await Promise.all([a.close(), b.close()])
})

t.test('maxPayload holds (1009) even when the app registered @fastify/websocket with a larger limit', async (t) => {
  const websocket = (await import('@fastify/websocket')).default
  const { app, url } = await startServer({ maxPayload: 1024 }, async (app) => {
    await app.register(websocket, { options: { maxPayload: 1024 * 1024 } })
  })
  t.teardown(() => app.close())
  const c = await connect(url)
  c.send({ type: 'action', channel: 'x', action: 'chat.message', payload: { text: 'x'.repeat(2000) } })
  t.equal((await c.closed).code, 1009)
})

t.test('client tracking: the plugin\'s own ws server keeps none (connections() does); an app-registered one keeps its own', async (t) => {
  const own = await startServer()
  t.teardown(() => own.app.close())
  const a = await connect(own.url)
  t.equal(own.app.websocketServer.clients, undefined, 'no ws client Set on the plugin\'s own server')
  t.same([...own.app.realtime.connections()].map((c) => c.deviceId), [a.deviceId], 'app.realtime.connections() lists it')

  const websocket = (await import('@fastify/websocket')).default
  const shared = await startServer({}, async (app) => { await app.register(websocket) })
  t.teardown(() => shared.app.close())
  const b = await connect(shared.url)
  t.equal(shared.app.websocketServer.clients.size, 1, 'the app\'s @fastify/websocket tracks its clients as configured')
  await Promise.all([a.close(), b.close()])
})
