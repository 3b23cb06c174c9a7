/**
 * The Redis Cluster adapter (sharded pub/sub) against a real local 3 + 3 cluster: the conformance suite with its
 * history and presence sections, one SSUBSCRIBE per topic per node counted with PUBSUB SHARDNUMSUB over the
 * masters, and the register-time refusals.
 */
import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import Fastify from 'fastify'
import { calculateSlot } from '../../lib/adapters/redis-cluster-shards.js'
import realtimePlugin, { redisAdapter, type RealtimeAdapter } from '../../lib/index.js'
import { adapterConformance } from '../../lib/adapters/conformance.js'
import { versionProblem } from '../../lib/adapters/redis-cluster-options.js'
import { poll, startRedisCluster } from '../helpers/redis-cluster.js'

const cluster = await startRedisCluster()
t.teardown(() => cluster.stop())
const app = Fastify()
t.teardown(() => app.close())
const appClusters: Cluster[] = []
t.teardown(async () => { await Promise.all(appClusters.filter((c) => c.status !== 'end').map((c) => c.quit())) })

function appCluster (options: ConstructorParameters<typeof Cluster>[1] = { shardedSubscribers: true }): Cluster {
  const c = new Cluster(cluster.nodes, options)
  c.on('error', () => {})
  appClusters.push(c)
  return c
}

async function ready (adapter: RealtimeAdapter): Promise<RealtimeAdapter> {
  await adapter.init!(app)
  return adapter
}

const PRESENCE_TIMEOUT = 4000
/** The app Cluster of each peer adapter, so a test can cut it like a crash would. */
const clusterOf = new Map<RealtimeAdapter, Cluster>()

adapterConformance((name, fn) => t.test(`conformance (own Cluster): ${name}`, fn), {
  create: () => ready(redisAdapter({ cluster: cluster.nodes, presenceTimeout: PRESENCE_TIMEOUT })),
  createPeer: async () => {
    const c = appCluster()
    const a = await ready(redisAdapter({ cluster: c, presenceTimeout: PRESENCE_TIMEOUT }))
    clusterOf.set(a, c)
    return a
  },
  history: {
    // Every master loses its keys, as a restart without persistence does (the helper runs no RDB and no AOF).
    loseStorage: async (a) => {
      for (const port of await cluster.masters()) await cluster.command(port, 'FLUSHALL')
      return a
    },
    ttlWait: 2500
  },
  presence: {
    // No cleanup and no more heartbeats: the node's Cluster connections are gone, as when its process is killed.
    crash: async (a) => { clusterOf.get(a)!.disconnect() },
    timeout: PRESENCE_TIMEOUT
  }
})

/** PUBSUB SHARDNUMSUB of `channel` summed over the masters (each counts only its own subscribers). */
async function shardNumSub (channel: string): Promise<number> {
  let sum = 0
  for (const port of await cluster.masters()) {
    const reply = await cluster.command(port, 'PUBSUB', 'SHARDNUMSUB', channel) as [string, number]
    sum += Number(reply[1])
  }
  return sum
}

t.test('channels are <prefix>{<topic>}: one SSUBSCRIBE per topic per node, over all three masters, none after the last leave', async (t) => {
  const a = await ready(redisAdapter({ cluster: cluster.nodes, prefix: 'app1:' }))
  const b = await ready(redisAdapter({ cluster: appCluster(), prefix: 'app1:' }))
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const topics = Array.from({ length: 30 }, (_, i) => `channel:room-${i}`)
  const owners = new Set(await Promise.all(topics.map((topic) => cluster.ownerOf(calculateSlot(`app1:{${topic}}`)))))
  t.equal(owners.size, 3, 'the topics spread over the three masters')
  const handlers = [(): void => {}, (): void => {}]
  for (const topic of topics) {
    for (const h of handlers) await a.subscribe(topic, h)
    await b.subscribe(topic, handlers[0]!)
  }
  for (const topic of topics) t.equal(await shardNumSub(`app1:{${topic}}`), 2, `${topic}: one per node`)
  for (const topic of topics) await a.unsubscribe(topic, handlers[0]!)
  t.equal(await shardNumSub(`app1:{${topics[0]}}`), 2, 'a handler is left on node a')
  for (const topic of topics) {
    await a.unsubscribe(topic, handlers[1]!)
    await b.unsubscribe(topic, handlers[0]!)
  }
  for (const topic of topics) t.equal(await shardNumSub(`app1:{${topic}}`), 0, `${topic}: released`)
})

t.test('close() leaves the app Cluster open and subscribed to nothing of ours; our own Cluster is quit', async (t) => {
  const mine = appCluster()
  const events = ['smessage', 'error', '-node', 'node error', 'nodeError', 'refresh', 'reconnecting', 'ready'] as const
  const before = events.map((e) => mine.listenerCount(e))
  const adapter = await ready(redisAdapter({ cluster: mine, prefix: 'app2:' }))
  await adapter.subscribe('t', () => {})
  t.equal(await shardNumSub('app2:{t}'), 1)
  await adapter.close()
  t.equal(await shardNumSub('app2:{t}'), 0)
  t.equal(await mine.set('app2:{t}:k', 'v'), 'OK', 'the app Cluster still works')
  t.same(events.map((e) => mine.listenerCount(e)), before, 'no listener of ours is left on it')

  const owned = redisAdapter({ cluster: cluster.nodes, prefix: 'app3:' })
  await owned.init!(app)
  await owned.subscribe('t', () => {})
  t.equal(await shardNumSub('app3:{t}'), 1)
  await owned.close()
  t.equal(await shardNumSub('app3:{t}'), 0, 'the subscriber connections are gone')
})

t.test('register-time refusals say what to change', async (t) => {
  const withoutSharded = appCluster({})
  t.throws(() => redisAdapter({ cluster: withoutSharded }), { code: 'FST_REALTIME_INVALID_OPTION', message: /shardedSubscribers: true/ })
  const withPrefix = appCluster({ shardedSubscribers: true, keyPrefix: 'p:' })
  t.throws(() => redisAdapter({ cluster: withPrefix }), { code: 'FST_REALTIME_INVALID_OPTION', message: /keyPrefix.*prefix option/ })
  const viaRedisOptions = appCluster({ shardedSubscribers: true, redisOptions: { keyPrefix: 'p:' } })
  t.throws(() => redisAdapter({ cluster: viaRedisOptions }), { code: 'FST_REALTIME_INVALID_OPTION', message: /keyPrefix/ })
  t.throws(() => redisAdapter({ cluster: cluster.nodes, url: 'redis://127.0.0.1:1' }), { code: 'FST_REALTIME_INVALID_OPTION', message: /cluster alone/ })
  const single = new Redis({ lazyConnect: true })
  t.throws(() => redisAdapter({ cluster: cluster.nodes, client: single }), { code: 'FST_REALTIME_INVALID_OPTION', message: /cluster alone/ })
  t.throws(() => redisAdapter({ cluster: single as unknown as Cluster }), { code: 'FST_REALTIME_INVALID_OPTION', message: /ioredis Cluster/ })
  for (const bad of [[], [{ host: '127.0.0.1' }], [{ host: '', port: 1 }], [{ host: 'h', port: 70000 }], ['127.0.0.1:1']]) {
    t.throws(() => redisAdapter({ cluster: bad as never }), { code: 'FST_REALTIME_INVALID_OPTION' }, JSON.stringify(bad))
  }
  t.throws(() => redisAdapter({ cluster: cluster.nodes, prefix: 'a{b}:' }), { code: 'FST_REALTIME_INVALID_OPTION', message: /\{ or \}/ })

  // In a register call: it throws there, before the app starts.
  const refused = Fastify()
  t.throws(() => refused.register(realtimePlugin, { adapter: redisAdapter({ cluster: withoutSharded }) }), { code: 'FST_REALTIME_INVALID_OPTION' })
  await refused.close()
})

t.test('a server older than 7.0 is refused with the node and its version', async (t) => {
  // The same text as `INFO server` on a Redis 6.2 node (the live cluster here runs 7.x and passes the same check).
  t.match(versionProblem('# Server\r\nredis_version:6.2.14\r\nredis_mode:cluster\r\n', '10.0.0.1:7000'),
    /node 10\.0\.0\.1:7000 runs Redis 6\.2\.14; sharded pub\/sub needs Redis >= 7\.0/)
  t.equal(versionProblem('# Server\r\nredis_version:7.0.15\r\n', 'n'), undefined)
  t.equal(versionProblem('# Server\r\nredis_version:8.2.1\r\n', 'n'), undefined)
  t.match(versionProblem('# Server\r\n', 'n'), /did not report/)
  const info = await cluster.command(cluster.nodes[0]!.port, 'INFO', 'server') as string
  t.equal(versionProblem(info, 'live'), undefined, 'the live cluster passes')
})

t.test('an unreachable cluster fails register with FST_REALTIME_UNAVAILABLE naming the nodes', async (t) => {
  const refused = Fastify()
  const err = await refused.register(realtimePlugin, { adapter: redisAdapter({ cluster: [{ host: '127.0.0.1', port: 1 }], subscribeTimeout: 500 }) })
    .ready().then(() => undefined, (e: Error) => e)
  t.match(err, { code: 'FST_REALTIME_UNAVAILABLE', message: /127\.0\.0\.1:1/ })
  await refused.close().catch(() => {})
})

t.test('ready() means ready: health ok and a publish right after it is delivered on the other node', async (t) => {
  for (let i = 0; i < 3; i++) {
    const a = Fastify()
    const b = Fastify()
    await a.register(realtimePlugin, { adapter: redisAdapter({ cluster: cluster.nodes }) })
    await b.register(realtimePlugin, { adapter: redisAdapter({ cluster: cluster.nodes }) })
    await Promise.all([a.ready(), b.ready()])
    t.equal(a.realtime.health().status, 'ok')
    let arrived: (m: string) => void = () => {}
    const got = new Promise<string>((resolve) => { arrived = resolve })
    await b.realtime.adapter.subscribe(`channel:fresh-${i}`, (m) => arrived(m))
    await a.realtime.adapter.publish(`channel:fresh-${i}`, `m${i}`)
    t.equal(await got, `m${i}`)
    await Promise.all([a.close(), b.close()])
  }
})

t.test('subscriptions lost behind ioredis\' back (as after a stale slot map) are found by the probe and subscribed again', async (t) => {
  const lines: string[] = []
  // The adapter's status at each log line, read as it is written: degraded exactly while the shard is stale.
  const statuses: string[] = []
  let status = (): string => 'not created'
  const logged = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(line); statuses.push(status()) } } } })
  t.teardown(() => logged.close())
  const mine = appCluster()
  const a = redisAdapter({ cluster: mine, prefix: 'app4:' })
  status = () => a.status!()
  await a.init!(logged)
  const b = await ready(redisAdapter({ cluster: cluster.nodes, prefix: 'app4:' }))
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const topics = Array.from({ length: 30 }, (_, i) => `channel:lost-${i}`)
  const got = new Set<string>()
  for (const topic of topics) await a.subscribe(topic, (m) => { got.add(`${topic}|${m}`) })
  const victim = await cluster.ownerOf(calculateSlot(`app4:{${topics[0]}}`))
  const owners = await Promise.all(topics.map((topic) => cluster.ownerOf(calculateSlot(`app4:{${topic}}`))))
  t.ok(owners.filter((p) => p === victim).length > 0, 'topics on the victim shard')

  // The server drops every channel of node a's subscriber connection to the victim (a SUNSUBSCRIBE per channel
  // sent on that connection directly): ioredis still lists them, as after a failover it read a stale map for.
  const group = (mine as unknown as { shardedSubscribers: { shardedSubscribers: Map<string, { getInstance: () => Redis }> } }).shardedSubscribers
  const sub = group.shardedSubscribers.get(`127.0.0.1:${victim}`)!.getInstance()
  const held = (sub as unknown as { condition: { subscriber: { channels: (type: string) => string[] } } }).condition.subscriber.channels('ssubscribe')
  t.ok(held.length > 1, `${held.length} channels on that connection (topics and the probe)`)
  for (const channel of held) await sub.sunsubscribe(channel)
  t.equal(await cluster.command(victim, 'PUBSUB', 'SHARDNUMSUB', `app4:{${topics[0]}}`).then((r) => Number((r as [string, number])[1])), 0, 'no subscriber left there')

  const lostAt = Date.now()
  // Healed by the probe: stale (the probe was accepted but not echoed; on a loaded machine its SPUBLISH may also go
  // unanswered within the probe timeout, and the shard is then reported unreachable), subscribed again. Or healed by
  // ioredis itself: a slot map read that differs from its last one (on a loaded machine a replica flagged failing
  // drops out of CLUSTER SLOTS) makes it subscribe every channel again, the probe then echoes and nothing is stale.
  // Either way every topic is delivered again; nominally within one probe interval plus one probe timeout (~5 s).
  const about = (): string[] => lines.filter((line) => line.includes(`127.0.0.1:${victim}`))
  const clusterLines = (): string => lines.filter((line) => line.includes('Redis Cluster')).join('')
  let n = 0
  await poll(async () => {
    const text = `m${++n}`
    await Promise.all(topics.map((topic) => b.publish(topic, text)))
    await new Promise((resolve) => setTimeout(resolve, 200))
    return topics.every((topic) => got.has(`${topic}|${text}`)) ? true : undefined
  }, 20_000, 'deliveries on every topic again')
    .catch((err: Error) => { throw new Error(`${err.message}; victim 127.0.0.1:${victim}; adapter log:\n${clusterLines()}`) })
  t.pass(`every topic delivered again ${Date.now() - lostAt} ms after the loss`)
  await poll(async () => status() === 'ready' ? true : undefined, 10_000, 'status ready again')
  t.pass('status ready again')
  const warnings = about().filter((line) => /subscription stale|shard unreachable/.test(line))
  const restored = about().filter((line) => /subscription restored|reachable again/.test(line))
  if (warnings.length > 0) {
    t.equal(warnings.length, 1, 'found by the probe: one warning')
    t.equal(statuses[lines.indexOf(warnings[0]!)], 'reconnecting', 'status reconnecting (health degraded) while stale')
    t.equal(restored.length, 1, 'one line when restored')
  } else {
    t.comment('no probe verdict: ioredis subscribed the channels again itself (its slot map changed meanwhile)')
    t.equal(restored.length, 0, 'nothing reported restored that was not reported lost')
  }
})

t.test('history: a stream written by another master (failover, migration) continues under a new epoch from offset 1', async (t) => {
  const adapter = await ready(redisAdapter({ cluster: cluster.nodes, prefix: 'app5:' }))
  t.teardown(() => adapter.close())
  const history = adapter.history!
  const first = await history.publish('w', 'm1', { size: 10, ttl: 60_000 })
  t.same(await history.publish('w', 'm2', { size: 10, ttl: 60_000 }), { offset: 2, epoch: first.epoch }, 'the same master: the same epoch')
  const owner = await cluster.ownerOf(calculateSlot('app5:{w}'))
  t.equal(await cluster.command(owner, 'HGET', 'app5:{w}:m', 'w'), await cluster.command(owner, 'CLUSTER', 'MYID'), 'the meta records its writer')
  // As on a promoted replica: the meta was replicated from a master with another id.
  await cluster.command(owner, 'HSET', 'app5:{w}:m', 'w', 'another-master-id')
  const page = await history.read('w', { limit: 10 })
  t.not(page.epoch, first.epoch, 'a read there starts a new epoch')
  t.same([page.offset, page.messages], [0, []], 'from an empty stream')
  t.same(await history.publish('w', 'm3', { size: 10, ttl: 60_000 }), { offset: 1, epoch: page.epoch }, 'appends continue from 1 under it')
  await cluster.command(owner, 'HSET', 'app5:{w}:m', 'w', 'another-master-id')
  const next = await history.publish('w', 'm4', { size: 10, ttl: 60_000 })
  t.ok(next.offset === 1 && next.epoch !== page.epoch, 'an append there starts a new epoch too')
})
