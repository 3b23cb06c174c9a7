import t from 'tap'
import { Redis } from 'ioredis'
import { redisAdapter } from '../lib/index.js'
import { connect } from './helpers/client.js'
import { startRedis } from './helpers/redis.js'
import { startServer } from './helpers/server.js'
import { serverSocketsClosed } from './helpers/wait.js'

const redis = await startRedis()
t.teardown(() => redis.stop())
const admin = new Redis({ port: redis.port, host: '127.0.0.1' })
t.teardown(() => admin.quit())

async function twoNodes (t: { teardown: (fn: () => unknown) => void }) {
  const a = await startServer({ adapter: redisAdapter({ url: redis.url }) })
  const b = await startServer({ adapter: redisAdapter({ url: redis.url }) })
  t.teardown(() => Promise.all([a.app.close(), b.app.close()]))
  return { a, b }
}

async function numsub (channel: string): Promise<number> {
  const reply = await admin.pubsub('NUMSUB', `realtime:{channel:${channel}}`) as [string, number]
  return reply[1]
}

t.test('an action sent on node A reaches members on node B (and A), in order', async (t) => {
  const { a, b } = await twoNodes(t)
  const sender = await connect(`${a.url}?deviceId=sender`)
  const onA = await connect(a.url)
  const onB = await connect(b.url)
  await Promise.all([sender.join('room'), onA.join('room'), onB.join('room')])
  t.equal(await numsub('room'), 2, 'one SUBSCRIBE per node, not per member')
  for (let i = 0; i < 50; i++) sender.send({ type: 'action', channel: 'room', action: 'cursor.move', payload: { x: i, y: 1 } })
  sender.send({ type: 'action', channel: 'room', action: 'chat.message', payload: { text: 'last' }, id: 'last' })
  t.same(await sender.next({ type: 'ack' }), { type: 'ack', id: 'last' })
  for (const c of [onA, onB]) {
    const xs: number[] = []
    for (let i = 0; i < 50; i++) xs.push((await c.next({ type: 'message' })).payload.x)
    t.same(xs, Array.from({ length: 50 }, (_, i) => i))
    t.same(await c.next({ type: 'message' }), { type: 'message', channel: 'room', action: 'chat.message', payload: { text: 'last' }, from: 'sender' })
  }
  await Promise.all([sender.close(), onA.close(), onB.close()])
})

t.test('publish and sendToDevice on node A reach node B', async (t) => {
  const { a, b } = await twoNodes(t)
  const member = await connect(`${b.url}?deviceId=dev-b`)
  await member.join('alerts')
  await a.app.realtime.publish('alerts', 'chat.message', { text: 'broadcast' })
  t.same(await member.next({ type: 'message' }), { type: 'message', channel: 'alerts', action: 'chat.message', payload: { text: 'broadcast' }, from: null })
  await a.app.realtime.sendToDevice('dev-b', 'chat.message', { text: 'direct' })
  t.same(await member.next({ type: 'message' }), { type: 'message', action: 'chat.message', payload: { text: 'direct' }, from: null })
  await member.close()
})

t.test('joined means subscribed: a publish right after joined is delivered', async (t) => {
  const { a, b } = await twoNodes(t)
  for (let i = 0; i < 20; i++) {
    const member = await connect(b.url)
    await member.join(`fresh:${i}`)
    await a.app.realtime.publish(`fresh:${i}`, 'chat.message', { text: String(i) })
    t.equal((await member.next({ type: 'message' })).payload.text, String(i))
    await member.close()
  }
})

t.test('after many connect/join/close cycles no Redis subscription is left', async (t) => {
  const { a, b } = await twoNodes(t)
  for (let round = 0; round < 10; round++) {
    const clients = await Promise.all([a.url, b.url, a.url, b.url].map((u, i) => connect(`${u}?deviceId=c${i}`)))
    await Promise.all(clients.map((c, i) => c.join(`cycle:${i % 3}`)))
    const cleaned = Promise.all([serverSocketsClosed(a.app), serverSocketsClosed(b.app)])
    await Promise.all(clients.map((c) => c.close()))
    await cleaned
  }
  t.match(a.app.realtime.stats(), { connections: 0, topics: 0 })
  t.match(b.app.realtime.stats(), { connections: 0, topics: 0 })
  // The UNSUBSCRIBEs were sent before the sockets' close handlers returned; a round trip on each node's
  // subscriber orders them before this check.
  await a.app.realtime.adapter.subscribe('sync', () => {})
  await b.app.realtime.adapter.subscribe('sync', () => {})
  const channels = await admin.pubsub('CHANNELS', 'realtime:*') as string[]
  t.same(channels, ['realtime:{sync}'], 'only the sync topic is left')
  for (const c of ['cycle:0', 'cycle:1', 'cycle:2']) t.equal(await numsub(c), 0, `no subscriber on ${c}`)
})

t.test('app.close() quits the Redis connections the plugin opened', async (t) => {
  const count = async () => ((await admin.client('LIST')) as string).trim().split('\n').length
  const before = await count()
  const node = await startServer({ adapter: redisAdapter({ url: redis.url }) })
  const c = await connect(node.url)
  await c.join('x')
  t.equal(await count(), before + 2, 'a publisher and a subscriber connection')
  await node.app.close()
  t.equal((await c.closed).code, 1001)
  t.equal(await count(), before, 'both closed')
})
