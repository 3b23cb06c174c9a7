import t from 'tap'
import { Redis } from 'ioredis'
import Fastify from 'fastify'
import fastifyRedis from '@fastify/redis'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import Type from 'typebox'
import realtimePlugin, { redisAdapter, type RealtimeAdapter } from '../../lib/index.js'
import { adapterConformance } from '../../lib/adapters/conformance.js'
import { startRedis } from '../helpers/redis.js'
import { until } from '../helpers/wait.js'

const redis = await startRedis()
t.teardown(() => redis.stop())
const clients: Redis[] = []
// A client cut by the crash test is already ended: quit only the others.
t.teardown(async () => { await Promise.all(clients.filter((c) => c.status !== 'end').map((c) => c.quit())) })

function client (lazyConnect = false): Redis {
  const c = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect })
  // Clients outlive their adapters (which log while they own them); the Redis restart test makes them all error.
  c.on('error', () => {})
  clients.push(c)
  return c
}

const PRESENCE_TIMEOUT = 4000
/** The publishing client of each adapter, so a test can cut it like a crash would. */
const clientOf = new Map<RealtimeAdapter, Redis>()
const app = Fastify()
t.teardown(() => app.close())
/** A ready adapter, as the conformance suite expects: init()ed (its subscriber connection opened) and connected. */
async function adapter (): Promise<RealtimeAdapter> {
  const c = client()
  const a = redisAdapter({ client: c, presenceTimeout: PRESENCE_TIMEOUT })
  clientOf.set(a, c)
  await a.init!(app)
  await until(() => a.status!() === 'ready', 5000, 'the adapter to connect')
  return a
}

adapterConformance((name, fn) => t.test(name, fn), {
  create: adapter,
  createPeer: adapter,
  history: {
    // Redis restarted without persistence (the helper runs it with no RDB and no AOF): every key is gone.
    loseStorage: async (a) => {
      await redis.stop()
      await redis.start()
      await until(() => a.status!() === 'ready', 15_000, 'the adapter to reconnect')
      return a
    },
    ttlWait: 2500
  },
  presence: {
    // No cleanup and no more heartbeats: the node's connection is gone, as when its process is killed.
    crash: async (a) => { clientOf.get(a)!.disconnect() },
    timeout: PRESENCE_TIMEOUT
  }
})

t.test('Redis channel names carry the prefix; one SUBSCRIBE per topic per node', async (t) => {
  const adapter = redisAdapter({ client: client(), prefix: 'app1:' })
  t.teardown(() => adapter.close())
  const admin = client()
  const h1 = (): void => {}
  const h2 = (): void => {}
  await adapter.subscribe('channel:room', h1)
  await adapter.subscribe('channel:room', h2)
  t.same(await admin.pubsub('CHANNELS', 'app1:*'), ['app1:{channel:room}'])
  t.same(await admin.pubsub('NUMSUB', 'app1:{channel:room}'), ['app1:{channel:room}', 1])
  await adapter.unsubscribe('channel:room', h1)
  t.same(await admin.pubsub('NUMSUB', 'app1:{channel:room}'), ['app1:{channel:room}', 1], 'still one handler left')
  await adapter.unsubscribe('channel:room', h2)
  t.same(await admin.pubsub('NUMSUB', 'app1:{channel:room}'), ['app1:{channel:room}', 0], 'released with the last handler')
})

t.test('a pattern-like topic is a literal channel, never a pattern', async (t) => {
  const adapter = redisAdapter({ client: client() })
  t.teardown(() => adapter.close())
  // init() waits until the publishing client is ready too (a subscribe only waits for the subscribing one): a publish
  // before that is refused as UNAVAILABLE (seen once in CI).
  await adapter.init!(app)
  const got: string[] = []
  let arrived: () => void = () => {}
  const literal = new Promise<void>((resolve) => { arrived = resolve })
  await adapter.subscribe('channel:a*', (m) => { got.push(m); if (m === 'literal') arrived() })
  await adapter.publish('channel:abc', 'not for the pattern')
  await adapter.publish('channel:a*', 'literal')
  // The literal publish is the last one on this connection: once it arrives, the other one would have too.
  await literal
  t.same(got, ['literal'])
  t.same(await client().pubsub('NUMPAT'), 0)
})

t.test('init: uses fastify.redis from @fastify/redis, and never closes it', async (t) => {
  const app = Fastify()
  await app.register(fastifyRedis, { host: '127.0.0.1', port: redis.port })
  const adapter = redisAdapter()
  await adapter.init!(app)
  await adapter.close()
  t.equal(await app.redis.ping(), 'PONG', 'the app client still works after adapter.close()')
  await app.close()
})

t.test('init: { url } opens and later closes its own connection', async (t) => {
  const app = Fastify()
  const adapter = redisAdapter({ url: redis.url })
  await adapter.init!(app)
  await app.ready()
  t.notOk(app.hasDecorator('redis'), 'the app gets no fastify.redis of ours')
  const got: string[] = []
  await adapter.subscribe('t', (m) => got.push(m))
  await adapter.publish('t', 'hello')
  const admin = client()
  t.same(await admin.pubsub('NUMSUB', 'realtime:{t}'), ['realtime:{t}', 1])
  await adapter.close()
  await app.close()
  t.same(await admin.pubsub('NUMSUB', 'realtime:{t}'), ['realtime:{t}', 0])
})

t.test('option errors', async (t) => {
  t.throws(() => redisAdapter({ url: redis.url, client: client() }), { code: 'FST_REALTIME_INVALID_OPTION' })
  t.throws(() => redisAdapter({ subscribeTimeout: 0 }), { code: 'FST_REALTIME_INVALID_OPTION' })
  t.throws(() => redisAdapter({ presenceTimeout: 4 }), { code: 'FST_REALTIME_INVALID_OPTION' })
  t.throws(() => redisAdapter({ presenceTimeout: 1.5e3 + 0.5 }), { code: 'FST_REALTIME_INVALID_OPTION' })
  t.throws(() => redisAdapter({ historyMetaTtl: 0 }), { code: 'FST_REALTIME_INVALID_OPTION' })
  t.throws(() => redisAdapter({ historyMetaTtl: '1d' as unknown as number }), { code: 'FST_REALTIME_INVALID_OPTION' })
  t.throws(() => redisAdapter({ prefix: 1 as unknown as string }), { code: 'FST_REALTIME_INVALID_OPTION' })
  const app = Fastify()
  await t.rejects(redisAdapter().init!(app) as Promise<void>, { code: 'FST_REALTIME_INVALID_OPTION' })
  await app.close()
})

t.test('ready() means ready: publish right after it succeeds and health() is ok', async (t) => {
  for (const [name, adapter] of [
    ['url', () => redisAdapter({ url: redis.url })],
    ['client not yet connected', () => redisAdapter({ client: client(true) })]
  ] as const) {
    for (let i = 0; i < 3; i++) {
      const app = Fastify()
      await app.register(realtimePlugin, { actions: { 'chat.message': Type.Object({ text: Type.String() }) }, adapter: adapter() })
      await app.ready()
      t.equal(app.realtime.health().status, 'ok', `${name} #${i}: health ok at ready()`)
      await app.realtime.publish('room', 'chat.message', { text: 'hi' })
      t.pass(`${name} #${i}: publish at ready() accepted`)
      await app.close()
    }
  }
})

t.test('connection errors name the URL (password redacted) and the cause', async (t) => {
  const http = createServer((_req, res) => res.end('not redis'))
  await once(http.listen(0, '127.0.0.1'), 'listening')
  t.teardown(() => http.close())
  const httpPort = (http.address() as AddressInfo).port
  const cases: Array<[string, RegExp]> = [
    ['redis://127.0.0.1:1', /redis:\/\/127\.0\.0\.1:1.*ECONNREFUSED/],
    ['redis://no-such-host.invalid:6379', /no-such-host\.invalid.*ENOTFOUND/],
    [`redis://127.0.0.1:${httpPort}`, /protocol error, is this port a Redis server/],
    ['redis://user:s3cret@127.0.0.1:1', /redis:\/\/user:\*\*\*@127\.0\.0\.1:1.*ECONNREFUSED/]
  ]
  for (const [url, message] of cases) {
    const app = Fastify()
    const err = await app.register(realtimePlugin, { adapter: redisAdapter({ url }) }).ready().then(() => undefined, (err: Error) => err)
    t.match(err, { code: 'FST_REALTIME_UNAVAILABLE', message }, url.replace(/:[^:@/]+@/, ':***@'))
    t.notMatch(err?.message ?? '', /s3cret/, 'never the password')
    await app.close().catch(() => {})
  }
})

t.test('url must be a redis:// URL: an empty string is refused, never a silent localhost', async (t) => {
  for (const url of ['', '127.0.0.1:6379', 'http://127.0.0.1:6379', 42]) {
    t.throws(() => redisAdapter({ url: url as string }), { code: 'FST_REALTIME_INVALID_OPTION' }, JSON.stringify(url))
  }
  t.doesNotThrow(() => redisAdapter({ url: 'rediss://cache.example:6380/2' }))
})
