/**
 * Redis killed (SIGKILL, by pid) and restarted on the same port under cross-node traffic: all or nothing,
 * never silent, and exactly the right subscriptions afterwards.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { redisAdapter } from '../lib/index.js'
import { connect, refusedStatus } from './helpers/client.js'
import { startRedis } from './helpers/redis.js'
import { startServer } from './helpers/server.js'
import { until } from './helpers/wait.js'

t.test('Redis down: UNAVAILABLE, nothing delivered anywhere; back: exact resubscribe, delivery resumes', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const node = () => startServer({ adapter: redisAdapter({ url: redis.url, subscribeTimeout: 300 }), healthRoute: '/ws/health' })
  const a = await node()
  const b = await node()
  t.teardown(() => Promise.all([a.app.close(), b.app.close()]))

  const sender = await connect(`${a.url}?deviceId=sender`)
  const localMember = await connect(`${a.url}?deviceId=local`)
  const remoteMember = await connect(`${b.url}?deviceId=remote`)
  await Promise.all([sender.join('room'), localMember.join('room'), remoteMember.join('room'), remoteMember.join('temp')])
  const say = (text: string, id: string) => sender.request({ type: 'action', channel: 'room', action: 'chat.message', payload: { text }, id })
  t.same(await say('before', 'm1'), { type: 'ack', id: 'm1' })
  t.equal((await remoteMember.next({ type: 'message' })).payload.text, 'before')
  t.same((await (await fetch(`${a.base}/ws/health`)).json()), { status: 'ok', adapter: 'ready', connections: 2, channels: 1 })

  await redis.stop(true) // SIGKILL: a crash, not a clean shutdown
  await until(() => a.app.realtime.health().adapter === 'reconnecting' && b.app.realtime.health().adapter === 'reconnecting', 5000, 'both nodes to notice')

  const started = Date.now()
  t.match(await say('during', 'm2'), { type: 'error', code: 'UNAVAILABLE', id: 'm2' })
  t.ok(Date.now() - started < 1000, 'answered at once, not after a retry loop')
  await t.rejects(a.app.realtime.publish('room', 'chat.message', { text: 'server during' }), { code: 'FST_REALTIME_UNAVAILABLE' })
  await t.rejects(a.app.realtime.sendToDevice('remote', 'chat.message', { text: 'dm during' }), { code: 'FST_REALTIME_UNAVAILABLE' })
  t.match(await sender.request({ type: 'join', channel: 'new-during-outage', id: 'j' }), { type: 'error', code: 'UNAVAILABLE', id: 'j' })
  t.same(await remoteMember.request({ type: 'leave', channel: 'temp', id: 'l' }), { type: 'left', channel: 'temp', id: 'l' }, 'leave always succeeds')
  const health = await fetch(`${a.base}/ws/health`)
  t.equal(health.status, 503)
  t.match(await health.json(), { status: 'degraded', adapter: 'reconnecting' })
  const newcomer = await (async () => {
    const c = new (await import('./helpers/client.js')).TestClient(`${a.url}?deviceId=late`)
    return c.closed
  })()
  t.equal(newcomer.code, 1013, 'a connection that cannot get its direct-message subscription is told to try again later')

  await redis.start()
  await until(() => a.app.realtime.health().adapter === 'ready' && b.app.realtime.health().adapter === 'ready', 15_000, 'both nodes to reconnect')
  const admin = new Redis({ port: redis.port, host: '127.0.0.1' })
  t.teardown(() => admin.quit())
  // Subscriptions are restored from each node's 'ready' handler; one round trip on each orders them before NUMSUB.
  await a.app.realtime.adapter.subscribe('sync', () => {})
  await b.app.realtime.adapter.subscribe('sync', () => {})
  t.same(await admin.pubsub('NUMSUB', 'realtime:{channel:room}', 'realtime:{channel:temp}', 'realtime:{channel:new-during-outage}'),
    ['realtime:{channel:room}', 2, 'realtime:{channel:temp}', 0, 'realtime:{channel:new-during-outage}', 0],
    'room on both nodes; nothing for the channel left or refused during the outage')

  t.same(await say('after', 'm3'), { type: 'ack', id: 'm3' })
  t.equal((await remoteMember.next({ type: 'message' })).payload.text, 'after', 'cross-node delivery resumed')
  const localTexts = [(await localMember.next({ type: 'message' })).payload.text, (await localMember.next({ type: 'message' })).payload.text]
  t.same(localTexts, ['before', 'after'], 'the rejected action reached nobody, not even the local node')
  t.same(remoteMember.frames.filter((f) => f.type === 'message'), [], 'nothing else reached the remote member')
  t.equal(await refusedStatus(`${a.url}?deviceId=bad!`), 400)
  await Promise.all([sender.close(), localMember.close(), remoteMember.close()])
})

t.test('a node whose Redis is unreachable fails registration loudly', async (t) => {
  const redis = await startRedis()
  await redis.stop()
  const Fastify = (await import('fastify')).default
  const app = Fastify()
  const realtimePlugin = (await import('../lib/index.js')).default
  await t.rejects(async () => { await app.register(realtimePlugin, { adapter: redisAdapter({ url: redis.url }) }) }, { code: 'FST_REALTIME_UNAVAILABLE' })
  await app.close().catch(() => {})
})
