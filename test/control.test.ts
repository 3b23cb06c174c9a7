/**
 * Server-driven membership and disconnect across nodes (issue 9), the connection API, and `except` (issue 8 item
 * 7): two nodes on one real Redis, real WebSocket clients.
 */
import t from 'tap'
import Type from 'typebox'
import { redisAdapter, type RealtimeConnection, type RealtimePluginOptions } from '../lib/index.js'
import { connect, refusedStatus, type TestClient } from './helpers/client.js'
import { startRedis } from './helpers/redis.js'
import { startServer, type TestServer } from './helpers/server.js'
import { until } from './helpers/wait.js'

const redis = await startRedis()
t.teardown(() => redis.stop())

async function twoNodes (t: { teardown: (fn: () => unknown) => void }, options: RealtimePluginOptions<any> = {}): Promise<{ a: TestServer, b: TestServer }> {
  const a = await startServer({ adapter: redisAdapter({ url: redis.url }), ...options })
  const b = await startServer({ adapter: redisAdapter({ url: redis.url }), ...options })
  t.teardown(() => Promise.all([a.app.close(), b.app.close()]))
  return { a, b }
}

/** Publishes a marker to `channel` from node `server` and waits for it on `client`: everything before it was delivered. */
async function drained (server: TestServer, channel: string, ...clients: TestClient[]): Promise<void> {
  await server.app.realtime.publish(channel, 'chat.message', { text: 'marker' })
  for (const c of clients) await c.next((f) => f.type === 'message' && f.payload.text === 'marker')
}

t.test('app.realtime.join / leave on node A act on every connection of the deviceId on A and B', async (t) => {
  const { a, b } = await twoNodes(t)
  const onA = await connect(`${a.url}?deviceId=dev1`)
  const onB = await connect(`${b.url}?deviceId=dev1`)
  const other = await connect(`${b.url}?deviceId=dev2`)
  await a.app.realtime.join('dev1', 'room')
  t.same(await onA.next({ type: 'joined' }), { type: 'joined', channel: 'room' }, 'unsolicited joined, no id')
  t.same(await onB.next({ type: 'joined' }), { type: 'joined', channel: 'room' })
  await drained(a, 'room', onA, onB)
  t.same(other.frames, [], 'another device is not joined')

  await b.app.realtime.publish('room', 'chat.message', { text: 'after join' })
  t.same((await onA.next({ type: 'message' })).payload, { text: 'after join' }, 'the subscription is active')
  t.same((await onB.next({ type: 'message' })).payload, { text: 'after join' })

  await a.app.realtime.leave('dev1', 'room')
  t.same(await onA.next({ type: 'left' }), { type: 'left', channel: 'room' }, 'unsolicited left, no id')
  t.same(await onB.next({ type: 'left' }), { type: 'left', channel: 'room' })
  await other.join('room')
  await drained(b, 'room', other)
  await a.app.realtime.leave('dev1', 'room')
  t.same(await onA.request({ type: 'leave', channel: 'x', id: 'sync' }), { type: 'left', channel: 'x', id: 'sync' })
  t.same(onA.frames, [], 'no message after the leave, no second left for a channel not joined')
  t.same(onB.frames.filter((f) => f.type === 'message'), [])
  await Promise.all([onA.close(), onB.close(), other.close()])
})

t.test('app.realtime.disconnect on node A closes the deviceId on A and B with its code and reason; onDisconnect sees it', async (t) => {
  const closes: Array<{ node: string, code: number, reason: string }> = []
  const a = await startServer({ adapter: redisAdapter({ url: redis.url }), onDisconnect: (_c: RealtimeConnection, close: { code: number, reason: string }) => { closes.push({ node: 'a', ...close }) } })
  const b = await startServer({ adapter: redisAdapter({ url: redis.url }), onDisconnect: (_c: RealtimeConnection, close: { code: number, reason: string }) => { closes.push({ node: 'b', ...close }) } })
  t.teardown(() => Promise.all([a.app.close(), b.app.close()]))
  const onA = await connect(`${a.url}?deviceId=kick`)
  const onB = await connect(`${b.url}?deviceId=kick`)
  const other = await connect(`${b.url}?deviceId=stay`)
  await a.app.realtime.disconnect('kick', { code: 4401, reason: 'logged out' })
  t.same(await onA.closed, { code: 4401, reason: 'logged out' })
  t.same(await onB.closed, { code: 4401, reason: 'logged out' })
  await until(() => closes.length === 2, 5000, 'onDisconnect on both nodes')
  t.same(closes.sort((x, y) => x.node.localeCompare(y.node)), [{ node: 'a', code: 4401, reason: 'logged out' }, { node: 'b', code: 4401, reason: 'logged out' }])
  t.equal(other.ws.readyState, other.ws.OPEN, 'another device stays connected')
  const dflt = await connect(`${b.url}?deviceId=kick2`)
  await a.app.realtime.disconnect('kick2')
  t.same(await dflt.closed, { code: 4000, reason: '' }, 'default code 4000')

  await t.rejects(a.app.realtime.disconnect('kick', { code: 1000 }), { code: 'FST_REALTIME_INVALID_CLOSE' })
  await t.rejects(a.app.realtime.disconnect('kick', { code: 5000 }), { code: 'FST_REALTIME_INVALID_CLOSE' })
  await t.rejects(a.app.realtime.disconnect('kick', { reason: 'é'.repeat(62) }), { code: 'FST_REALTIME_INVALID_CLOSE' })
  await t.rejects(a.app.realtime.disconnect('bad id'), { code: 'FST_REALTIME_INVALID_DEVICE_ID' })
  await t.rejects(a.app.realtime.join('dev', 'bad channel'), { code: 'FST_REALTIME_INVALID_CHANNEL' })
  await t.rejects(a.app.realtime.leave('bad id', 'room'), { code: 'FST_REALTIME_INVALID_DEVICE_ID' })
  await other.close()
})

t.test('except: publish(..., { except }) and the exceptSelf frame field skip that deviceId on every node', async (t) => {
  const { a, b } = await twoNodes(t)
  const senderA = await connect(`${a.url}?deviceId=typist`)
  const senderB = await connect(`${b.url}?deviceId=typist`)
  const watcherA = await connect(`${a.url}?deviceId=w1`)
  const watcherB = await connect(`${b.url}?deviceId=w2`)
  const all = [senderA, senderB, watcherA, watcherB]
  await Promise.all(all.map((c) => c.join('room')))

  t.same(await senderA.request({ type: 'action', channel: 'room', action: 'chat.message', payload: { text: 'typing' }, exceptSelf: true, id: 1 }), { type: 'ack', id: 1 })
  for (const w of [watcherA, watcherB]) t.same(await w.next({ type: 'message' }), { type: 'message', channel: 'room', action: 'chat.message', payload: { text: 'typing' }, from: 'typist' })
  await a.app.realtime.publish('room', 'chat.message', { text: 'server typing' }, { except: 'typist' })
  for (const w of [watcherA, watcherB]) t.same((await w.next({ type: 'message' })).payload, { text: 'server typing' })
  t.same(await senderA.request({ type: 'action', channel: 'room', action: 'chat.message', payload: { text: 'all' }, exceptSelf: false, id: 2 }), { type: 'ack', id: 2 })
  for (const c of all) t.same((await c.next({ type: 'message' })).payload, { text: 'all' }, 'exceptSelf: false is a plain publish')
  t.same(senderA.frames, [], 'the excepted device received nothing before')
  t.same(senderB.frames, [])
  await t.rejects(a.app.realtime.publish('room', 'chat.message', { text: 'x' }, { except: 'bad id' }), { code: 'FST_REALTIME_INVALID_DEVICE_ID' })
  await Promise.all(all.map((c) => c.close()))
})

t.test('the connection API: id, send, join, leave, from hooks and handlers; connections()', async (t) => {
  const ids: string[] = []
  const { a } = await twoNodes(t, {
    actions: {
      'chat.message': Type.Object({ text: Type.String() }),
      'room.enter': {
        payload: Type.Object({ room: Type.String() }),
        handler: async ({ connection, payload }: { connection: RealtimeConnection, payload: { room: string } }) => {
          await connection.join(payload.room)
          return [...connection.channels]
        }
      },
      'room.exit': {
        payload: Type.Object({ room: Type.String() }),
        handler: async ({ connection, payload }: { connection: RealtimeConnection, payload: { room: string } }) => { await connection.leave(payload.room) }
      }
    },
    onConnect: (connection: RealtimeConnection) => {
      ids.push(connection.id)
      connection.send('chat.message', { text: `hello ${connection.deviceId}` })
    }
  })
  const c1 = await connect(`${a.url}?deviceId=api`)
  const c2 = await connect(`${a.url}?deviceId=api`)
  t.same(await c1.next({ type: 'message' }), { type: 'message', action: 'chat.message', payload: { text: 'hello api' }, from: null }, 'send: to this socket, like a direct message')
  t.same(await c2.next({ type: 'message' }), { type: 'message', action: 'chat.message', payload: { text: 'hello api' }, from: null })
  t.equal(ids.length, 2)
  t.not(ids[0], ids[1], 'ids are unique per connection')
  t.same([...a.app.realtime.connections()].map((c) => c.id).sort(), [...ids].sort(), 'connections() lists this node\'s connections')

  c1.send({ type: 'action', action: 'room.enter', payload: { room: 'r1' }, id: 1 })
  t.same(await c1.next(), { type: 'joined', channel: 'r1' }, 'the joined frame first')
  t.same(await c1.next(), { type: 'ack', id: 1, result: ['r1'] }, 'then the handler\'s reply')
  t.same(c2.frames, [], 'this connection only')
  c1.send({ type: 'action', action: 'room.exit', payload: { room: 'r1' }, id: 2 })
  t.same(await c1.next(), { type: 'left', channel: 'r1' })
  t.same(await c1.next(), { type: 'ack', id: 2 })
  const conn = [...a.app.realtime.connections()].find((c) => c.id === ids[0])!
  t.throws(() => conn.send('nope' as 'chat.message', { text: 'x' }), { code: 'FST_REALTIME_UNKNOWN_ACTION' })
  t.throws(() => conn.send('chat.message', { text: 1 } as unknown as { text: string }), { code: 'FST_REALTIME_VALIDATION_FAILED' })
  await t.rejects(conn.join('bad channel'), { code: 'FST_REALTIME_INVALID_CHANNEL' })
  await Promise.all([c1.close(), c2.close()])
})

t.test('channels returned by authenticate are joined right after the welcome, on every connect, before onConnect', async (t) => {
  const seen: string[][] = []
  const { a, b } = await twoNodes(t, {
    authenticate: (request: { query: unknown }) => {
      const { deviceId } = request.query as { deviceId: string }
      if (deviceId === 'broken') return { deviceId, channels: ['bad channel'] }
      return { deviceId, channels: [`user:${deviceId}`, 'team:1'] }
    },
    onConnect: (connection: RealtimeConnection) => { seen.push([...connection.channels].sort()) }
  })
  for (let attempt = 0; attempt < 2; attempt++) {
    const c = await connect(`${b.url}?deviceId=ann`)
    const joined = [await c.next(), await c.next()].sort((x, y) => x.channel.localeCompare(y.channel))
    t.same(joined, [{ type: 'joined', channel: 'team:1' }, { type: 'joined', channel: 'user:ann' }], `connect ${attempt + 1}: unsolicited joined frames`)
    await a.app.realtime.publish('team:1', 'chat.message', { text: `from A ${attempt}` })
    t.same((await c.next({ type: 'message' })).payload, { text: `from A ${attempt}` })
    await until(() => seen.length === attempt + 1, 5000, 'onConnect')
    t.same(seen[attempt], ['team:1', 'user:ann'], 'onConnect sees the joined channels')
    await c.close()
  }
  t.equal(await refusedStatus(`${a.url}?deviceId=broken`), 500, 'invalid channel names are a server bug: 500 before the 101')
})
