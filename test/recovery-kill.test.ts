/**
 * Real crashes: nodes in their own processes on a real Redis, killed with SIGKILL. Recovery through the client SDK
 * after the node it was on dies and comes back on the same port, and after its network was paused until the server
 * dropped it (every message exactly once, in order, recovered: true), a
 * Redis restart without persistence (recovered: false, new epoch), and presence across nodes with the members of
 * a killed node removed within the bound.
 */
import type { Socket } from 'node:net'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { redisAdapter } from '../lib/index.js'
import {
  createClient, type ClientOptions, type CloseDetail, type JoinResult, type RealtimeClient, type ResetDetail
} from '../lib/client/index.js'
import { connect } from './helpers/client.js'
import { nextEvent } from './helpers/client-sdk.js'
import { startRedis } from './helpers/redis.js'
import { startRedisNode } from './helpers/redis-node.js'
import { startServer } from './helpers/server.js'
import { until } from './helpers/wait.js'

const PRESENCE_TIMEOUT = 3000
/** How long the paused-network case keeps the client's TCP reader stopped, at least (ms). */
const PAUSE = 3000

/** Whether `reader` is present in `feed`, as `app` reads it across nodes (latest answer; `undefined` before one). */
let readerPresent: boolean | undefined
function presenceOf (app: FastifyInstance): boolean | undefined {
  app.realtime.presence('feed').then((members) => { readerPresent = members.some((m) => m.deviceId === 'reader') }, () => {})
  return readerPresent
}

/** A client SDK reading `feed` on `url`: the offsets of its deliveries, in arrival order, and its re-joins. */
function reader (url: string, options: ClientOptions = {}): {
  client: RealtimeClient, seen: number[], rejoins: JoinResult[], resets: ResetDetail[], mismatched: string[]
} {
  const client = createClient(url, { deviceId: 'reader', minDelay: 50, maxDelay: 500, ...options })
  const seen: number[] = []
  const mismatched: string[] = []
  const rejoins: JoinResult[] = []
  const resets: ResetDetail[] = []
  client.on('feed', 'chat.message', (payload, { offset }) => {
    seen.push(offset!)
    if ((payload as { text: string }).text !== `m${offset}`) mismatched.push(`${offset}: ${(payload as { text: string }).text}`)
  })
  client.addEventListener('rejoined', (e) => rejoins.push(e.detail))
  client.addEventListener('reset', (e) => resets.push(e.detail))
  return { client, seen, rejoins, resets, mismatched }
}

/** Publishes `m1`, `m2`, ... to `feed` from `app` about every 10 ms until `stop()`; resolves with the count sent. */
function steadyPublisher (app: FastifyInstance): { sent: () => number, stop: () => Promise<number> } {
  let sent = 0
  const run = { stop: false }
  const loop = (async () => {
    while (!run.stop) {
      await app.realtime.publish('feed', 'chat.message', { text: `m${sent + 1}` })
      sent++
      await new Promise((resolve) => setTimeout(resolve, 10)) // pacing the load, not waiting for an event
    }
  })()
  return { sent: () => sent, stop: async () => { run.stop = true; await loop; return sent } }
}

t.test('a node killed and restarted: the SDK re-joins with since and gets every message exactly once, in order', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  let nodeA = await startRedisNode(redis.url)
  t.teardown(() => nodeA.stop())
  const B = await startServer({ adapter: redisAdapter({ url: redis.url }), history: { size: 1000, ttl: 60_000 } })
  t.teardown(() => B.app.close())

  const { client, seen, rejoins, resets, mismatched } = reader(nodeA.url)
  t.teardown(() => client.close())
  t.match(await client.join('feed'), { channel: 'feed', offset: 0 })
  // Published steadily from node B (about 100 per second, so the 1000 kept cover the restart).
  const publisher = steadyPublisher(B.app)
  await until(() => seen.length >= 20, 10_000, 'deliveries before the crash')
  const closed = nextEvent<CloseDetail>(client, 'close')
  await nodeA.kill()
  t.match(await closed, { code: 1006, willReconnect: true }, 'the SDK saw the crash and will reconnect')
  const port = nodeA.port
  nodeA = await startRedisNode(redis.url, port)
  await until(() => rejoins.length === 1, 15_000, 'the SDK to re-join')
  const after = seen.length
  await until(() => seen.length >= after + 20, 10_000, 'live deliveries after the recovery')
  const sent = await publisher.stop()
  await until(() => seen.length >= sent, 10_000, 'the last deliveries')
  t.match(rejoins, [{ channel: 'feed', recovered: true }], 'one re-join, recovered')
  t.same(resets, [])
  t.same(seen, Array.from({ length: sent }, (_, i) => i + 1), `every message once, in order: ${sent} published`)
  t.same(mismatched, [])
})

t.test('the client\'s network paused (TCP reader stopped) until the server drops it: exactly once, in order', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  // A short heartbeat: a client that cannot read the ping never answers it and is terminated after two intervals.
  const nodeA = await startRedisNode(redis.url, 0, 15_000, 1000)
  t.teardown(() => nodeA.stop())
  const B = await startServer({ adapter: redisAdapter({ url: redis.url }), history: { size: 1000, ttl: 60_000 }, presence: true })
  t.teardown(() => B.app.close())

  const sockets: WebSocket[] = []
  class Recording extends WebSocket {
    constructor (url: string) {
      super(url)
      sockets.push(this)
    }
  }
  const { client, seen, rejoins, resets, mismatched } = reader(nodeA.url, { WebSocket: Recording })
  t.teardown(() => client.close())
  await client.join('feed')
  const publisher = steadyPublisher(B.app)
  await until(() => seen.length >= 20, 10_000, 'deliveries before the pause')
  const tcp = (sockets.at(-1) as unknown as { _socket: Socket })._socket
  tcp.pause()
  const paused = Date.now()
  // A few seconds without reading; meanwhile node A terminates the connection at its heartbeat: the reader's
  // presence ends, as node B sees it.
  await until(() => presenceOf(B.app) === false && Date.now() - paused >= PAUSE, 15_000, 'node A to drop the paused client')
  const pausedFor = Date.now() - paused
  tcp.resume()
  await until(() => rejoins.length === 1, 15_000, 'the SDK to reconnect and re-join')
  const after = seen.length
  await until(() => seen.length >= after + 20, 10_000, 'live deliveries after the recovery')
  const sent = await publisher.stop()
  await until(() => seen.length >= sent, 10_000, 'the last deliveries')
  t.ok(pausedFor >= PAUSE, `the reader was paused ${pausedFor} ms`)
  t.match(rejoins, [{ channel: 'feed', recovered: true }], 'one re-join, recovered')
  t.same(resets, [])
  t.same(seen, Array.from({ length: sent }, (_, i) => i + 1), `every message once, in order: ${sent} published`)
  t.same(mismatched, [])
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
