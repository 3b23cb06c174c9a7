/**
 * Real crashes: nodes in their own processes on a real Redis, killed with SIGKILL. Recovery after the node a
 * client was on dies and comes back on the same port (every message exactly once, in order, recovered: true), a
 * Redis restart without persistence (recovered: false, new epoch), and presence across nodes with the members of
 * a killed node removed within the bound.
 */
import t from 'tap'
import { redisAdapter } from '../lib/index.js'
import { connect, type Frame, type TestClient } from './helpers/client.js'
import { startRedis } from './helpers/redis.js'
import { startRedisNode } from './helpers/redis-node.js'
import { startServer } from './helpers/server.js'
import { until } from './helpers/wait.js'

const PRESENCE_TIMEOUT = 3000

t.test('a node killed and restarted: the client re-joins with since and gets every message exactly once, in order', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  let nodeA = await startRedisNode(redis.url)
  t.teardown(() => nodeA.stop())
  const B = await startServer({ adapter: redisAdapter({ url: redis.url }), history: { size: 1000, ttl: 60_000 } })
  t.teardown(() => B.app.close())

  const seen: number[] = []
  let position = { offset: 0, epoch: '' }
  const track = (client: TestClient): void => {
    client.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame
      if (frame.type === 'message' && frame.channel === 'feed') {
        position = { offset: frame.offset, epoch: position.epoch }
        seen.push(frame.offset)
      }
    })
  }
  let client = await connect(`${nodeA.url}?deviceId=reader`)
  track(client)
  const joined = await client.join('feed')
  position = { offset: joined.offset, epoch: joined.epoch }

  // Published steadily from node B (about 100 per second, so the 1000 kept cover the restart) until told to stop.
  let sent = 0
  const run = { stop: false }
  const publisher = (async () => {
    while (!run.stop) {
      await B.app.realtime.publish('feed', 'chat.message', { text: `m${sent + 1}` })
      sent++
      await new Promise((resolve) => setTimeout(resolve, 10)) // pacing the load, not waiting for an event
    }
  })()
  await until(() => position.offset >= 20, 10_000, 'deliveries before the crash')
  await nodeA.kill()
  const port = nodeA.port
  nodeA = await startRedisNode(redis.url, port)
  client = await connect(`${nodeA.url}?deviceId=reader`)
  track(client)
  const since = { ...position }
  const rejoin = await client.request({ type: 'join', channel: 'feed', id: 'again', since })
  t.match(rejoin, { type: 'joined', channel: 'feed', id: 'again', epoch: since.epoch, recovered: true })
  const after = position.offset
  await until(() => position.offset >= after + 20, 10_000, 'live deliveries after the recovery')
  run.stop = true
  await publisher
  await until(() => position.offset >= sent, 10_000, 'the last deliveries')
  t.same(seen, Array.from({ length: sent }, (_, i) => i + 1), `every message once, in order: ${sent} published`)
  await client.close()
})

t.test('presence across nodes: snapshot, diffs, two tabs count once, a killed node\'s members leave within the bound', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const A = await startServer({ adapter: redisAdapter({ url: redis.url, presenceTimeout: PRESENCE_TIMEOUT }), presence: true })
  t.teardown(() => A.app.close())
  const nodeB = await startRedisNode(redis.url, 0, PRESENCE_TIMEOUT)
  t.teardown(() => nodeB.stop())

  const alice = await connect(`${A.url}?deviceId=alice`)
  t.same(await alice.join('room'), { type: 'joined', channel: 'room', id: 'join:room' })
  t.same(await alice.next({ type: 'presence' }), { type: 'presence', channel: 'room', members: [{ deviceId: 'alice' }] })
  t.same(await alice.next({ type: 'presence_diff' }), { type: 'presence_diff', channel: 'room', joins: [{ deviceId: 'alice' }], leaves: [] }, 'its own join reaches it too')

  const bob = await connect(`${nodeB.url}?deviceId=bob`)
  t.match(await bob.join('room'), { type: 'joined', channel: 'room' })
  const snapshot = await bob.next({ type: 'presence' })
  t.same(snapshot.members.map((m: { deviceId: string }) => m.deviceId).sort(), ['alice', 'bob'])
  t.same(await alice.next({ type: 'presence_diff' }), { type: 'presence_diff', channel: 'room', joins: [{ deviceId: 'bob' }], leaves: [] })

  const aliceTab2 = await connect(`${nodeB.url}?deviceId=alice`)
  await aliceTab2.join('room')
  await aliceTab2.next({ type: 'presence' })
  t.same((await A.app.realtime.presence('room')).map((m) => m.deviceId).sort(), ['alice', 'bob'], 'two tabs of alice: one member')

  await nodeB.kill()
  const killed = Date.now()
  const leave = await alice.next({ type: 'presence_diff' })
  const elapsed = Date.now() - killed
  t.same(leave, { type: 'presence_diff', channel: 'room', joins: [], leaves: [{ deviceId: 'bob' }] }, 'bob leaves; alice stays (still on A)')
  t.ok(elapsed <= PRESENCE_TIMEOUT, `within the bound: ${elapsed} ms <= ${PRESENCE_TIMEOUT} ms`)
  t.same(await A.app.realtime.presence('room'), [{ deviceId: 'alice' }])
  t.same(alice.frames.filter((f) => f.type === 'presence_diff'), [], 'no diff for the second tab')
  await alice.close()
})

t.test('Redis restarted without persistence: the next re-join gets recovered: false and a new epoch; history works after', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const A = await startServer({ adapter: redisAdapter({ url: redis.url }), history: { size: 100, ttl: 60_000 } })
  t.teardown(() => A.app.close())
  const c = await connect(`${A.url}?deviceId=c`)
  const joined = await c.join('room')
  await A.app.realtime.publish('room', 'chat.message', { text: 'before' })
  t.equal((await c.next({ type: 'message' })).offset, 1)
  await c.close()
  await redis.stop(true)
  await redis.start()
  await until(() => A.app.realtime.health().adapter === 'ready', 15_000, 'the node to reconnect')
  const back = await connect(`${A.url}?deviceId=c`)
  const rejoin = await back.request({ type: 'join', channel: 'room', id: 'r', since: { offset: 1, epoch: joined.epoch } })
  t.match(rejoin, { type: 'joined', channel: 'room', id: 'r', offset: 0, recovered: false })
  t.not(rejoin.epoch, joined.epoch, 'a new epoch')
  await A.app.realtime.publish('room', 'chat.message', { text: 'after' })
  t.match(await back.next({ type: 'message' }), { offset: 1, payload: { text: 'after' } })
  t.same((await A.app.realtime.history('room')).messages.map((m) => m.payload), [{ text: 'after' }])
  await back.close()
})
