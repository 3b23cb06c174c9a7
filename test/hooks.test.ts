/**
 * Lifecycle hooks (issue 9): onConnect, onJoin, onLeave, onDisconnect fire once each, in order, for every close
 * cause; a throwing or rejecting hook changes nothing else.
 */
import { once } from 'node:events'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import WebSocket from 'ws'
import realtimePlugin, { memoryAdapter, type RealtimeConnection, type RealtimePluginOptions } from '../lib/index.js'
import { actions } from './helpers/server.js'
import { connect } from './helpers/client.js'
import { until } from './helpers/wait.js'

/** Records every hook call as a string, in call order. */
function recorder (extra: RealtimePluginOptions<any> = {}): { events: string[], options: RealtimePluginOptions<any> } {
  const events: string[] = []
  const options: RealtimePluginOptions<any> = {
    onConnect: (c: RealtimeConnection) => { events.push(`connect ${c.deviceId}`) },
    onJoin: async (c: RealtimeConnection, channel: string) => { events.push(`join ${c.deviceId} ${channel}`) },
    onLeave: (c: RealtimeConnection, channel: string) => { events.push(`leave ${c.deviceId} ${channel}`) },
    onDisconnect: async (c: RealtimeConnection, { code }: { code: number }) => { events.push(`disconnect ${c.deviceId} ${code}`) },
    ...extra
  }
  return { events, options }
}

async function start (t: Test, options: RealtimePluginOptions<any>): Promise<{ app: ReturnType<typeof Fastify>, url: string }> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtimePlugin, { actions, adapter: memoryAdapter(), heartbeatInterval: 0, ...options })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${port}/ws` }
}

t.test('client close: connect, join, leave, then onLeave for what is still joined before onDisconnect', async (t) => {
  const { events, options } = recorder()
  const { url } = await start(t, options)
  const c = await connect(`${url}?deviceId=d1`)
  await until(() => events.length === 1, 5000, 'onConnect')
  t.same(events, ['connect d1'], 'onConnect after the welcome')
  await c.join('a')
  await c.join('b')
  t.same(await c.request({ type: 'join', channel: 'a', id: 'again' }), { type: 'joined', channel: 'a', id: 'again' })
  await c.request({ type: 'leave', channel: 'a', id: 'la' })
  await c.request({ type: 'leave', channel: 'never', id: 'ln' })
  await c.close(4321)
  await until(() => events.length === 6, 5000, 'onDisconnect')
  t.same(events, ['connect d1', 'join d1 a', 'join d1 b', 'leave d1 a', 'leave d1 b', 'disconnect d1 4321'],
    'once each, in order; no onJoin for a channel already joined, no onLeave for one never joined')
})

t.test('missed heartbeat: onDisconnect with 1006', async (t) => {
  const { events, options } = recorder()
  const { url } = await start(t, { ...options, heartbeatInterval: 100 })
  const c = await connect(`${url}?deviceId=hb`, { autoPong: false })
  await c.join('room')
  await c.closed
  await until(() => events.length === 4, 5000, 'onDisconnect')
  t.same(events, ['connect hb', 'join hb room', 'leave hb room', 'disconnect hb 1006'])
})

t.test('slow consumer: onDisconnect with 1013', async (t) => {
  const { events, options } = recorder()
  const { app, url } = await start(t, { ...options, maxBufferedBytes: 1024 })
  const ws = new WebSocket(`${url}?deviceId=slow`)
  const welcome = once(ws, 'message')
  await once(ws, 'open')
  await welcome
  ws.send(JSON.stringify({ type: 'join', channel: 'room', id: 1 }))
  await once(ws, 'message')
  ;(ws as unknown as { _socket: { pause: () => void } })._socket.pause() // stop reading: the server's buffer grows
  const text = 'x'.repeat(4000)
  for (let i = 0; i < 5000 && app.realtime.stats().slowConsumersClosed === 0; i++) {
    await app.realtime.publish('room', 'chat.message', { text })
    if (i % 20 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  ws.terminate()
  await until(() => events.some((e) => e.startsWith('disconnect')), 10_000, 'onDisconnect')
  t.equal(app.realtime.stats().slowConsumersClosed, 1)
  t.same(events.slice(0, 3), ['connect slow', 'join slow room', 'leave slow room'])
  t.match(events[3], /^disconnect slow (1013|1006)$/, 'the close code the server saw (1006 if the socket was destroyed)')
  t.equal(events.length, 4)
})

t.test('shutdown: app.close() waits for onLeave and onDisconnect (1001)', async (t) => {
  const { events, options } = recorder()
  const app = Fastify()
  await app.register(realtimePlugin, { actions, heartbeatInterval: 0, ...options })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const c = await connect(`ws://127.0.0.1:${port}/ws?deviceId=sd`)
  await c.join('room')
  await app.close()
  t.same(events, ['connect sd', 'join sd room', 'leave sd room', 'disconnect sd 1001'])
  t.equal((await c.closed).code, 1001)
})

t.test('throwing and rejecting hooks change nothing else', async (t) => {
  const events: string[] = []
  const { url } = await start(t, {
    onConnect: () => { events.push('connect'); throw new Error('connect hook bug') },
    onJoin: async () => { events.push('join'); throw new Error('join hook bug') },
    onLeave: () => { events.push('leave'); return Promise.reject(new Error('leave hook bug')) },
    onDisconnect: () => { events.push('disconnect'); throw new Error('disconnect hook bug') }
  })
  const c = await connect(`${url}?deviceId=th`)
  const d = await connect(`${url}?deviceId=other`)
  t.same(await c.join('room'), { type: 'joined', channel: 'room', id: 'join:room' })
  await d.join('room')
  t.same(await c.request({ type: 'action', channel: 'room', action: 'chat.message', payload: { text: 'still fine' }, id: 1 }), { type: 'ack', id: 1 })
  t.same(await d.next({ type: 'message' }), { type: 'message', channel: 'room', action: 'chat.message', payload: { text: 'still fine' }, from: 'th' })
  t.same(await c.request({ type: 'leave', channel: 'room', id: 2 }), { type: 'left', channel: 'room', id: 2 })
  await c.close()
  await until(() => events.filter((e) => e === 'disconnect').length === 1, 5000, 'onDisconnect')
  t.same(await d.request({ type: 'action', channel: 'room', action: 'chat.message', payload: { text: 'alive' }, id: 3 }), { type: 'ack', id: 3 },
    'the server is unaffected')
  await d.close()
  await until(() => events.filter((e) => e === 'disconnect').length === 2, 5000, 'onDisconnect')
  t.same(events, ['connect', 'connect', 'join', 'join', 'leave', 'disconnect', 'leave', 'disconnect'])
})
