/**
 * History, recovery and presence on a real Redis Cluster (3 masters + 3 replicas): two Fastify nodes, clients on a
 * history channel, then a graceful CLUSTER FAILOVER and a SIGKILL of the master owning the channel's slot. A
 * client re-joining with `since` gets `recovered: true` with every message (offsets contiguous) or
 * `recovered: false` with a new epoch, never a gap; members that stayed joined see contiguous offsets or a `reset`.
 */
import t, { type Test } from 'tap'
import { calculateSlot } from '../lib/adapters/redis-cluster-shards.js'
import { redisAdapter } from '../lib/index.js'
import { connect, type Frame, type TestClient } from './helpers/client.js'
import { poll, startRedisCluster } from './helpers/redis-cluster.js'
import { startServer, type TestServer } from './helpers/server.js'

const cluster = await startRedisCluster()
t.teardown(() => cluster.stop())

const PRESENCE_TIMEOUT = 4000
const node = (): Promise<TestServer> => startServer({
  adapter: redisAdapter({ cluster: cluster.nodes, presenceTimeout: PRESENCE_TIMEOUT }),
  history: { size: 1000, ttl: 60_000 },
  presence: true
})
const a = await node()
const b = await node()
t.teardown(() => Promise.all([a.app.close(), b.app.close()]))

const CHANNEL = 'log'
const slot = calculateSlot(`realtime:{channel:${CHANNEL}}`)

/**
 * A member that stays joined: checks every `message` of the channel against its position (offset + 1, or a gap
 * nobody reported) and follows `reset` frames. `violations` lists every silent gap or duplicate seen.
 */
interface Member { client: TestClient, position: { epoch: string, offset: number }, violations: string[], resets: number }

async function member (server: TestServer, deviceId: string): Promise<Member> {
  const client = await connect(`${server.url}?deviceId=${deviceId}`)
  const m: Member = { client, position: { epoch: '', offset: 0 }, violations: [], resets: 0 }
  client.ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as Frame
    if (frame.channel !== CHANNEL) return
    if (frame.type === 'joined') m.position = { epoch: frame.epoch, offset: frame.offset }
    if (frame.type === 'reset') {
      m.resets++
      m.position = { epoch: frame.epoch, offset: frame.offset }
    }
    if (frame.type === 'message') {
      if (frame.offset !== m.position.offset + 1) m.violations.push(`offset ${String(frame.offset)} after ${m.position.offset} (epoch ${m.position.epoch})`)
      m.position = { ...m.position, offset: frame.offset }
    }
  })
  const joined = await client.request({ type: 'join', channel: CHANNEL, id: 'j' })
  if (joined.type !== 'joined') throw new Error(`join: ${JSON.stringify(joined)}`)
  return m
}

const x = await member(a, 'x')
const y = await member(b, 'y')
t.teardown(() => Promise.all([x.client.close(), y.client.close()]))

let seq = 0
/** Publishes `count` messages, alternately from node a and node b, each awaited (acknowledged). */
async function publish (count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const server = ++seq % 2 === 0 ? a : b
    await server.app.realtime.publish(CHANNEL, 'chat.message', { text: `m${seq}` })
  }
}

/** Publishes one message, retrying while the channel's shard answers UNAVAILABLE (a failover in progress). */
async function publishWhenUp (timeout: number): Promise<void> {
  await poll(async () => {
    await a.app.realtime.publish(CHANNEL, 'chat.message', { text: `m${++seq}` })
    return true
  }, timeout, 'a publish accepted on the channel\'s new master')
}

/**
 * A new client re-joins with `since` on `server`: recovered true with every message since (offsets contiguous up to
 * the top), or recovered false with another epoch. Returns the joined frame.
 */
async function rejoin (t: Test, server: TestServer, since: { epoch: string, offset: number }, deviceId: string): Promise<Frame> {
  const client = await connect(`${server.url}?deviceId=${deviceId}`)
  t.teardown(() => client.close())
  const joined = await client.request({ type: 'join', channel: CHANNEL, id: 'r', since })
  t.equal(joined.type, 'joined', `${deviceId}: joined`)
  if (joined.recovered === true) {
    t.equal(joined.epoch, since.epoch, 'recovered under the same epoch')
    const replay: number[] = []
    const expected = Array.from({ length: joined.offset - since.offset }, (_, i) => since.offset + 1 + i)
    for (let i = 0; i < expected.length; i++) replay.push((await client.next({ type: 'message' })).offset)
    t.same(replay, expected, `recovered: every message from ${since.offset + 1} to ${String(joined.offset)}, contiguous`)
  } else {
    t.equal(joined.recovered, false, 'recovered false')
    t.not(joined.epoch, since.epoch, 'not recovered: a new epoch, never a gap under the same one')
  }
  return joined
}

/**
 * Waits, without any publish, until both members got a reset to a new epoch: the nodes caught up from the streams
 * after the shard came back (the adapter's `history.onReconnect`), and the new master's stream has a new epoch.
 */
async function resetWithoutPublish (epoch: string, what: string): Promise<void> {
  await poll(async () => x.position.epoch !== epoch && y.position.epoch !== epoch ? true : undefined, 15_000, what)
}

/** Waits until both members have caught up to the channel's top (live or through a reset). */
async function caughtUp (what: string): Promise<{ epoch: string, offset: number }> {
  return await poll(async () => {
    const top = await a.app.realtime.history(CHANNEL, { limit: 0 })
    const at = (m: Member): boolean => m.position.epoch === top.epoch && m.position.offset === top.offset
    return at(x) && at(y) ? { epoch: top.epoch, offset: top.offset } : undefined
  }, 15_000, what)
}

t.test('two nodes: offsets contiguous across both, recovery with since on the other node, presence across nodes', async (t) => {
  await publish(20)
  const top = await caughtUp('both members at offset 20')
  t.equal(top.offset, 20)
  t.same([x.violations, y.violations], [[], []], 'every member got every offset once, in order')
  const joined = await rejoin(t, b, { epoch: top.epoch, offset: 5 }, 'z')
  t.match(joined, { recovered: true, offset: 20 })
  t.same((await a.app.realtime.presence(CHANNEL)).map((m) => m.deviceId).sort(), ['x', 'y', 'z'], 'presence across the two nodes')
  t.same((await b.app.realtime.presence(CHANNEL)).map((m) => m.deviceId).sort(), ['x', 'y', 'z'])
})

t.test('graceful CLUSTER FAILOVER of the channel\'s master: a re-join with since is recovered or told so, never a gap', async (t) => {
  await publish(10)
  const before = await caughtUp('both members at the top before the failover')
  const owner = await cluster.ownerOf(slot)
  const promoted = await cluster.failover(owner)
  t.equal(await cluster.ownerOf(slot), promoted, `slot ${slot} moved from ${owner} to ${promoted}`)
  await resetWithoutPublish(before.epoch, 'a reset on both nodes once the shard is up again, before any publish')
  t.same([x.resets, y.resets], [1, 1], 'each member told once')
  await publishWhenUp(10_000)
  await publish(5)
  const after = await caughtUp('both members at the top after the failover')
  const joined = await rejoin(t, b, before, 'f1')
  // The documented rule (README "Redis Cluster"): another master serving the topic starts a new epoch.
  t.not(after.epoch, before.epoch, 'the promoted master started a new epoch')
  t.equal(joined.recovered, false)
  t.same([x.violations, y.violations], [[], []], 'the joined members saw no silent gap')
  const again = await rejoin(t, a, { epoch: after.epoch, offset: after.offset - 3 }, 'f2')
  t.match(again, { recovered: true, offset: after.offset }, 'recovery within the new epoch works')
})

t.test('SIGKILL of the channel\'s master while its replica lags: acknowledged appends lost, yet never a silent gap', async (t) => {
  await publish(5)
  const before = await caughtUp('both members at the top before the kill')
  const owner = await cluster.ownerOf(slot)
  const replica = await cluster.replicaOf(owner)
  // Replication is asynchronous: with the replica stalled for 3 s (DEBUG SLEEP), the master acknowledges and
  // delivers appends (4 publishers, 4 KB each, until their first rejection) that the replica never gets once the
  // master is killed. The replica still takes over after it wakes.
  const stalled = cluster.command(replica, 'DEBUG', 'SLEEP', 3)
  const text = 'x'.repeat(4000)
  let accepted = 0
  let killedAt = Infinity
  const publishers = Array.from({ length: 4 }, async (_, p) => {
    for (let i = 0; ; i++) {
      try {
        await a.app.realtime.publish(CHANNEL, 'chat.message', { text: `${p}-${i}-${text}` })
        accepted++
      } catch (err) {
        return { code: (err as { code?: string }).code, ms: Date.now() - killedAt }
      }
    }
  })
  await poll(async () => accepted >= 1500 ? true : undefined, 10_000, 'appends under way')
  // A member joining now (the replica stalled long since): its presence entry is written on the master only, and lost with it.
  const late = await connect(`${a.url}?deviceId=late`)
  t.teardown(() => late.close())
  t.match(await late.request({ type: 'join', channel: CHANNEL, id: 'late' }), { type: 'joined' })
  const heir = await cluster.kill(owner)
  t.equal(heir, replica)
  killedAt = Date.now()
  const rejections = await Promise.all(publishers)
  t.same(rejections.map((r) => r.code), Array(4).fill('FST_REALTIME_UNAVAILABLE'), `every publisher stopped by UNAVAILABLE (${rejections.map((r) => r.ms).join(', ')} ms after the kill)`)
  t.pass(`${accepted} appends acknowledged until the kill was noticed`)
  await t.rejects(a.app.realtime.history(CHANNEL), { code: 'FST_REALTIME_UNAVAILABLE' }, 'history reads answer UNAVAILABLE while the shard is down')
  await stalled
  // Before the replica takes over: its copy of the stream position.
  await cluster.command(heir, 'READONLY')
  const replicaTop = await cluster.command(heir, 'HGET', `realtime:{channel:${CHANNEL}}:m`, 's').catch(() => 'unreadable')
  t.pass(`the replica held offset ${String(replicaTop)} when its master died; the members had ${x.position.offset} and ${y.position.offset}`)
  // The last position a joined member held at the kill (possibly an append the replica never got).
  const held = { ...x.position }
  await cluster.replaced(owner)
  await resetWithoutPublish(held.epoch, 'a reset on both nodes once the replica took over, before any publish')
  await publishWhenUp(15_000)
  const after = await caughtUp('both members at the top after the kill')
  t.same([x.violations, y.violations], [[], []], 'the joined members saw no silent gap')
  t.not(after.epoch, before.epoch, 'the replica that took over started a new epoch')
  // Each node rewrites its own presence members after the shard came back.
  const members = await poll(async () => {
    const list = (await b.app.realtime.presence(CHANNEL)).map((m) => m.deviceId).sort()
    return list.includes('late') ? list : undefined
  }, 10_000, 'the member that joined just before the kill to be present again')
  t.same(members, ['late', 'x', 'y'], 'presence after the takeover: every member, the lost one written back')
  t.equal((await rejoin(t, b, before, 'k1')).recovered, false, 'from before the burst')
  t.equal((await rejoin(t, a, held, 'k2')).recovered, false, `from the position held at the kill (${held.offset})`)
})
