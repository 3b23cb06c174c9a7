/**
 * Redis-specific behaviour of the history and presence capabilities (the shared contract is in redis.test.ts's
 * conformance run): key layout with one hash tag per topic, the envelope on the wire, the startup check of the
 * settings recovery relies on, and presence converging after Redis loses everything.
 */
import t from 'tap'
import { Writable } from 'node:stream'
import { Redis } from 'ioredis'
import Fastify, { type FastifyInstance } from 'fastify'
import { redisAdapter, type RealtimeAdapter } from '../../lib/index.js'
import { recoveryWarnings } from '../../lib/adapters/redis-history.js'
import type { PresenceChange, PresenceMember } from '../../lib/adapters/presence.js'
import type { StreamPosition } from '../../lib/adapters/history.js'
import { connect } from '../helpers/client.js'
import { startRedis } from '../helpers/redis.js'
import { startServer } from '../helpers/server.js'
import { until } from '../helpers/wait.js'
import { pollUntil } from '../../lib/adapters/conformance-inbox.js'

const redis = await startRedis()
t.teardown(() => redis.stop())
const admin = new Redis({ port: redis.port, host: '127.0.0.1' })
admin.on('error', () => {}) // the restart test makes every client error for a moment
t.teardown(() => admin.quit())

/** A Fastify app whose log lines (JSON) are collected in `lines`. */
function loggedApp (): { app: FastifyInstance, lines: Array<{ level: number, msg: string }> } {
  const lines: Array<{ level: number, msg: string }> = []
  const stream = new Writable({
    write (chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)))
      done()
    }
  })
  return { app: Fastify({ logger: { level: 'debug', stream } }), lines }
}

async function ready (adapter: RealtimeAdapter, app: FastifyInstance): Promise<RealtimeAdapter> {
  await adapter.init!(app)
  await app.ready()
  await until(() => adapter.status!() === 'ready', 5000, 'the adapter to connect')
  return adapter
}

t.test('every key of a topic and its pub/sub channel share the hash tag {<topic>}', async (t) => {
  const { app } = loggedApp()
  t.teardown(() => app.close())
  const adapter = await ready(redisAdapter({ url: redis.url, prefix: 'kl:' }), app)
  t.teardown(() => adapter.close())
  const got: string[] = []
  await adapter.subscribe('channel:room.1', (m) => got.push(m))
  t.same(await admin.pubsub('CHANNELS', 'kl:*'), ['kl:{channel:room.1}'])
  await adapter.history!.publish('channel:room.1', 'hello', { size: 10, ttl: 60_000 })
  await adapter.presence!.add('channel:room.1', 'c1', { deviceId: 'd1' })
  const keys = (await admin.keys('kl:*')).sort()
  const topicKeys = keys.filter((k) => k.startsWith('kl:{'))
  t.ok(topicKeys.length >= 5, `stream, meta and presence keys: ${topicKeys.join(', ')}`)
  t.ok(topicKeys.every((k) => k.startsWith('kl:{channel:room.1}:')), 'all in the topic\'s hash slot')
  const others = keys.filter((k) => !k.startsWith('kl:{'))
  t.ok(others.length === 2 && others.every((k) => k.startsWith('kl:presence:node')), `the only other keys are the node registry: ${others.join(', ')}`)
  const ttl = await admin.pttl('kl:{channel:room.1}:s')
  t.ok(ttl > 0 && ttl <= 60_000, `the stream expires ttl ms after the last publish (${ttl})`)
  await until(() => got.length === 1, 5000, 'the delivery')
  t.same(got, ['hello'], 'the subscriber gets the message, not the envelope')
})

t.test('the envelope: positions travel out of band; a malformed one is logged and dropped', async (t) => {
  const { app, lines } = loggedApp()
  t.teardown(() => app.close())
  const adapter = await ready(redisAdapter({ url: redis.url }), app)
  t.teardown(() => adapter.close())
  const got: Array<[string, StreamPosition | undefined]> = []
  await adapter.subscribe('env', (m, p) => got.push([m, p]))
  await admin.publish('realtime:{env}', '\u0001garbage-without-spaces')
  await admin.publish('realtime:{env}', '\u00017 ep0ch {"a":1} with spaces')
  await admin.publish('realtime:{env}', '\u0001 \u0001escaped')
  await until(() => got.length === 2, 5000, 'two deliveries')
  t.same(got, [['{"a":1} with spaces', { offset: 7, epoch: 'ep0ch' }], ['\u0001escaped', undefined]])
  t.ok(lines.some((l) => l.level === 50 && /malformed history envelope/.test(l.msg)), 'the malformed one is logged')
})

t.test('recoveryWarnings names each setting that breaks recovery', async (t) => {
  t.same(recoveryWarnings({ save: '', appendonly: 'no', appendfsync: 'everysec', 'maxmemory-policy': 'noeviction' }), [], 'no persistence: sound')
  t.same(recoveryWarnings({ save: '', appendonly: 'yes', appendfsync: 'always', 'maxmemory-policy': 'noeviction' }), [], 'AOF always: sound')
  t.match(recoveryWarnings({ save: '3600 1', appendonly: 'no', appendfsync: 'everysec', 'maxmemory-policy': 'noeviction' }), [/RDB snapshots/])
  t.match(recoveryWarnings({ save: '', appendonly: 'yes', appendfsync: 'everysec', 'maxmemory-policy': 'noeviction' }), [/appendfsync everysec/])
  t.match(recoveryWarnings({ save: '', appendonly: 'no', appendfsync: 'always', 'maxmemory-policy': 'allkeys-lru' }), [/maxmemory-policy allkeys-lru/])
})

t.test('history.start() warns at startup when Redis runs with settings that break recovery', async (t) => {
  await admin.config('SET', 'save', '3600 1', 'maxmemory-policy', 'volatile-lru')
  t.teardown(() => admin.config('SET', 'save', '', 'maxmemory-policy', 'noeviction'))
  const { app, lines } = loggedApp()
  t.teardown(() => app.close())
  const adapter = await ready(redisAdapter({ url: redis.url }), app)
  t.teardown(() => adapter.close())
  await adapter.history!.start!()
  const warnings = lines.filter((l) => l.level === 40).map((l) => l.msg)
  t.match(warnings, [/RDB snapshots \(save "3600 1"\)/, /maxmemory-policy volatile-lru/])
})

t.test('presence converges after Redis loses everything: members restored, a removal made while down kept', async (t) => {
  const { app } = loggedApp()
  t.teardown(() => app.close())
  const adapter = await ready(redisAdapter({ url: redis.url, presenceTimeout: 2000 }), app)
  t.teardown(() => adapter.close())
  const changes: Array<[string, PresenceChange]> = []
  adapter.presence!.onChange((topic, change) => changes.push([topic, change]))
  await adapter.presence!.start!()
  await adapter.presence!.add('room', 'c1', { deviceId: 'stays', info: { n: 1 } })
  await adapter.presence!.add('room', 'c2', { deviceId: 'goes' })

  await redis.stop(true)
  await until(() => adapter.status!() !== 'ready', 5000, 'the adapter to notice')
  await t.rejects(adapter.presence!.add('room', 'c3', { deviceId: 'late' }), { code: 'FST_REALTIME_UNAVAILABLE' })
  await t.rejects(adapter.presence!.list('room'), { code: 'FST_REALTIME_UNAVAILABLE' })
  t.same(await adapter.presence!.remove('room', 'c2'), { joins: [], leaves: [] }, 'remove never rejects')
  await redis.start()
  await until(() => adapter.status!() === 'ready', 15_000, 'the adapter to reconnect')

  const byDevice = (ms: PresenceMember[]): string[] => ms.map((m) => m.deviceId).sort()
  const restored = await pollUntil(() => adapter.presence!.list('room'), (members) => members.length > 0, 10_000, 'the members to be restored')
  t.same(byDevice(restored), ['stays'], 'the node wrote back its own members, without the one removed while down')
  t.same(restored, [{ deviceId: 'stays', info: { n: 1 } }])
  t.same(changes, [['room', { joins: [{ deviceId: 'stays', info: { n: 1 } }], leaves: [] }]],
    'the restore is reported to the listener (the other nodes saw the member vanish with Redis)')
})

t.test('history.onReconnect: called once after the subscriptions are restored following an outage, not at start', async (t) => {
  const { app } = loggedApp()
  t.teardown(() => app.close())
  const adapter = await ready(redisAdapter({ url: redis.url }), app)
  t.teardown(() => adapter.close())
  let calls = 0
  let called: () => void = () => {}
  const reconnected = new Promise<void>((resolve) => { called = resolve })
  adapter.history!.onReconnect!(() => { calls++; called() })
  const got: string[] = []
  await adapter.subscribe('rc', (m) => got.push(m))
  await redis.stop(true)
  await redis.start()
  await reconnected
  // The listener runs once SUBSCRIBE is answered: a message published now reaches the handler.
  await admin.publish('realtime:{rc}', 'after')
  await until(() => got.length === 1, 5000, 'the delivery after the reconnect')
  t.equal(calls, 1)
  t.same(got, ['after'])
  // Both connections back before the teardown (quitting a reconnecting url client fails in @fastify/redis).
  await until(() => adapter.status!() === 'ready', 15_000, 'the publishing connection too')
})

t.test('a re-join with since above the stream\'s top under the same epoch is recovered: false, never a silent success', async (t) => {
  const server = await startServer({ adapter: redisAdapter({ url: redis.url, prefix: 'ahead:' }), history: { size: 100, ttl: 60_000 } })
  t.teardown(() => server.app.close())
  for (let i = 1; i <= 3; i++) await server.app.realtime.publish('feed', 'chat.message', { text: `m${i}` })
  const { epoch, offset } = await server.app.realtime.history('feed', { limit: 0 })
  t.equal(offset, 3)
  const client = await connect(`${server.url}?deviceId=ahead`)
  t.teardown(() => client.close())
  // As after Redis restored an older snapshot: the client saw offsets the stream no longer has, under its epoch.
  t.same(await client.request({ type: 'join', channel: 'feed', id: 'j', since: { offset: 5, epoch } }),
    { type: 'joined', channel: 'feed', id: 'j', epoch, offset: 3, recovered: false })
  t.same(await client.request({ type: 'join', channel: 'feed', id: 'k', since: { offset: 3, epoch } }),
    { type: 'joined', channel: 'feed', id: 'k', epoch, offset: 3 }, 'joined already: the position it was sent up to')
})
