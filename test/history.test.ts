/**
 * History and recovery over real sockets: offsets on deliveries, `joined` with the stream position, `since`
 * recovery all-or-nothing, `app.realtime.history()`, option checks; across two nodes on a real Redis.
 */
import t from 'tap'
import Fastify from 'fastify'
import realtimePlugin, { redisAdapter, type RealtimeAdapter } from '../lib/index.js'
import { connect, type Frame, type TestClient } from './helpers/client.js'
import { startRedis } from './helpers/redis.js'
import { actions, startServer } from './helpers/server.js'

const say = (c: TestClient, channel: string, text: string, id: string): Promise<Frame> =>
  c.request({ type: 'action', channel, action: 'chat.message', payload: { text }, id })

async function messages (c: TestClient, count: number): Promise<Frame[]> {
  const got: Frame[] = []
  for (let i = 0; i < count; i++) got.push(await c.next({ type: 'message' }))
  return got
}

t.test('one node: offsets on deliveries, joined with epoch/offset, recovery with since, history()', async (t) => {
  const server = await startServer({ history: (channel) => channel.startsWith('log:') ? { size: 5, ttl: 60_000 } : false })
  t.teardown(() => server.app.close())
  const a = await connect(`${server.url}?deviceId=a`)
  const first = await a.join('log:1')
  t.match(first, { type: 'joined', channel: 'log:1', offset: 0 })
  t.type(first.epoch, 'string')
  t.notOk('recovered' in first, 'no recovered without since')
  for (let i = 1; i <= 3; i++) t.same(await say(a, 'log:1', `m${i}`, `s${i}`), { type: 'ack', id: `s${i}` })
  const got = await messages(a, 3)
  t.same(got.map((m) => [m.offset, m.payload.text, m.from]), [[1, 'm1', 'a'], [2, 'm2', 'a'], [3, 'm3', 'a']])
  const epoch = first.epoch as string

  // A client that saw offset 1 comes back: exactly 2 and 3, then live.
  const b = await connect(`${server.url}?deviceId=b`)
  const rejoin = await b.request({ type: 'join', channel: 'log:1', id: 'r', since: { offset: 1, epoch } })
  t.same(rejoin, { type: 'joined', channel: 'log:1', id: 'r', epoch, offset: 3, recovered: true })
  t.same((await messages(b, 2)).map((m) => m.offset), [2, 3])
  await say(a, 'log:1', 'm4', 's4')
  t.same((await b.next({ type: 'message' })).offset, 4, 'then live, no gap, no duplicate')
  // A join of a channel joined already answers with the position this connection was sent up to.
  t.same(await b.request({ type: 'join', channel: 'log:1', id: 'again' }), { type: 'joined', channel: 'log:1', id: 'again', epoch, offset: 4 })
  t.same(await b.request({ type: 'join', channel: 'log:1', id: 'again2', since: { offset: 2, epoch } }),
    { type: 'joined', channel: 'log:1', id: 'again2', epoch, offset: 4 }, 'with since: no replay, no recovered')

  // Position at the top: recovered, nothing replayed.
  const c = await connect(`${server.url}?deviceId=c`)
  t.same(await c.request({ type: 'join', channel: 'log:1', id: 'top', since: { offset: 4, epoch } }),
    { type: 'joined', channel: 'log:1', id: 'top', epoch, offset: 4, recovered: true })

  // A position above the top under the same epoch (a client ahead of the stream: the stream lost its last
  // messages, e.g. a Redis that restored an older state): recovered false, never a silent success.
  t.same(await c.request({ type: 'join', channel: 'log:1', id: 'ahead', since: { offset: 7, epoch } }),
    { type: 'joined', channel: 'log:1', id: 'ahead', epoch, offset: 4 }, 'joined already: no recovered field')
  const ahead = await connect(`${server.url}?deviceId=ahead`)
  t.same(await ahead.request({ type: 'join', channel: 'log:1', id: 'ahead', since: { offset: 7, epoch } }),
    { type: 'joined', channel: 'log:1', id: 'ahead', epoch, offset: 4, recovered: false }, 'since above the top: recovered false')
  await ahead.close()

  // Trimmed past the client's offset (size 5): recovered false, no partial replay.
  for (let i = 5; i <= 9; i++) await say(a, 'log:1', `m${i}`, `s${i}`)
  const d = await connect(`${server.url}?deviceId=d`)
  t.same(await d.request({ type: 'join', channel: 'log:1', id: 'old', since: { offset: 2, epoch } }),
    { type: 'joined', channel: 'log:1', id: 'old', epoch, offset: 9, recovered: false })
  // Another epoch (the stream was lost meanwhile): recovered false.
  t.same(await d.request({ type: 'join', channel: 'log:2', id: 'other', since: { offset: 0, epoch: 'not-this-one' } }),
    { type: 'joined', channel: 'log:2', id: 'other', epoch: (await server.app.realtime.history('log:2')).epoch, offset: 0, recovered: false })
  await say(a, 'log:1', 'm10', 's10')
  t.same((await d.next({ type: 'message', channel: 'log:1' })).offset, 10, 'nothing replayed before the live message')

  const page = await server.app.realtime.history('log:1', { since: 7, limit: 2 })
  t.same(page, {
    epoch,
    offset: 10,
    messages: [{ offset: 8, action: 'chat.message', payload: { text: 'm8' }, from: 'a' }, { offset: 9, action: 'chat.message', payload: { text: 'm9' }, from: 'a' }]
  })
  await server.app.realtime.publish('log:1', 'chat.message', { text: 'server' })
  t.match(await d.next({ type: 'message', channel: 'log:1' }), { offset: 11, from: null, payload: { text: 'server' } })
  t.same((await server.app.realtime.history('log:1')).messages.map((m) => m.offset), [7, 8, 9, 10, 11], 'the newest 5 (size)')

  // A channel without history: no offsets, plain joined, history() refused.
  t.same(await a.join('chat'), { type: 'joined', channel: 'chat', id: 'join:chat' })
  await say(a, 'chat', 'plain', 'p')
  t.same(await a.next({ type: 'message', channel: 'chat' }), { type: 'message', channel: 'chat', action: 'chat.message', payload: { text: 'plain' }, from: 'a' })
  await t.rejects(server.app.realtime.history('chat'), { code: 'FST_REALTIME_INVALID_OPTION' })
  await t.rejects(server.app.realtime.history('bad channel!'), { code: 'FST_REALTIME_INVALID_CHANNEL' })
  await t.rejects(server.app.realtime.history('log:1', { limit: -1 }), { code: 'FST_REALTIME_INVALID_OPTION' })
  t.match(await a.request({ type: 'join', channel: 'log:3', id: 'bad', since: { offset: -1, epoch } }), { type: 'error', code: 'BAD_REQUEST', id: 'bad' })
  await Promise.all([a.close(), b.close(), c.close(), d.close()])
})

t.test('exceptSelf on a history channel: the offset is taken, the sender skipped, a replay skips it too', async (t) => {
  const server = await startServer({ history: { size: 10, ttl: 60_000 } })
  t.teardown(() => server.app.close())
  const a = await connect(`${server.url}?deviceId=a`)
  const b = await connect(`${server.url}?deviceId=b`)
  const joined = await a.join('room')
  await b.join('room')
  a.send({ type: 'action', channel: 'room', action: 'chat.message', payload: { text: 'not to a' }, exceptSelf: true, id: 'x' })
  t.same(await a.next({ type: 'ack' }), { type: 'ack', id: 'x' })
  t.same((await b.next({ type: 'message' })).offset, 1)
  await say(b, 'room', 'to all', 'y')
  t.same((await a.next({ type: 'message' })).offset, 2, 'a sees offset 2 only')
  const again = await connect(`${server.url}?deviceId=a`)
  await again.request({ type: 'join', channel: 'room', id: 'r', since: { offset: 0, epoch: joined.epoch } })
  t.same((await again.next({ type: 'message' })).offset, 2, 'the replay skips what excepted this device')
  await Promise.all([a.close(), b.close(), again.close()])
})

t.test('options: history and presence need the capability; bad values are refused at register', async (t) => {
  const bare: RealtimeAdapter = {
    subscribe: async () => {}, unsubscribe: async () => {}, publish: async () => {}, close: async () => {}
  }
  for (const [options, what] of [
    [{ adapter: bare, history: { size: 10, ttl: 1000 } }, 'history without the capability'],
    [{ adapter: bare, presence: true }, 'presence without the capability'],
    [{ history: { size: 0, ttl: 1000 } }, 'size 0'],
    [{ history: { size: 10 } }, 'no ttl'],
    [{ history: true }, 'history: true'],
    [{ presence: 'yes' }, 'presence: a string']
  ] as const) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(realtimePlugin, { actions, ...options } as any) }, { code: 'FST_REALTIME_INVALID_OPTION' }, what)
    await app.close().catch(() => {})
  }
  const app = Fastify()
  await app.register(realtimePlugin, { actions, adapter: bare, history: false, presence: false })
  await app.ready()
  await app.close()
})

t.test('two nodes on Redis: concurrent publishers get gap-free offsets, the same on every node; recovery across nodes', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const node = () => startServer({ adapter: redisAdapter({ url: redis.url }), history: { size: 1000, ttl: 60_000 } })
  const A = await node()
  const B = await node()
  t.teardown(() => Promise.all([A.app.close(), B.app.close()]))
  const onA = await connect(`${A.url}?deviceId=onA`)
  const onB = await connect(`${B.url}?deviceId=onB`)
  const joined = await onA.join('room')
  await onB.join('room')
  const count = 100
  for (let i = 0; i < count; i++) {
    ;(i % 2 === 0 ? onA : onB).send({ type: 'action', channel: 'room', action: 'cursor.move', payload: { x: i, y: 0 } })
  }
  const seenA = (await messages(onA, count)).map((m) => [m.offset, m.payload.x])
  const seenB = (await messages(onB, count)).map((m) => [m.offset, m.payload.x])
  t.same(seenA.map(([o]) => o), Array.from({ length: count }, (_, i) => i + 1), 'gap-free, in order')
  t.same(seenB, seenA, 'identical on both nodes')

  // onA goes away after offset 100; messages are published on B; it comes back to A with its position.
  await onA.close()
  for (let i = 0; i < 5; i++) await say(onB, 'room', `while away ${i}`, `w${i}`)
  const back = await connect(`${A.url}?deviceId=onA`)
  t.same(await back.request({ type: 'join', channel: 'room', id: 'back', since: { offset: count, epoch: joined.epoch } }),
    { type: 'joined', channel: 'room', id: 'back', epoch: joined.epoch, offset: count + 5, recovered: true })
  t.same((await messages(back, 5)).map((m) => m.payload.text), [0, 1, 2, 3, 4].map((i) => `while away ${i}`))
  await Promise.all([back.close(), onB.close()])
})
