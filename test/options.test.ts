import t from 'tap'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import * as promClient from 'prom-client'
import Type from 'typebox'
import realtimePlugin, { memoryAdapter } from '../lib/index.js'
import { connect, refusedStatus } from './helpers/client.js'
import { startServer } from './helpers/server.js'

const invalid: Array<[string, Record<string, unknown>]> = [
  ['path without slash', { path: 'ws' }],
  ['path with query', { path: '/ws?x=1' }],
  ['path not a string', { path: 42 }],
  ['adapter without methods', { adapter: { publish () {} } }],
  ['adapter not an object', { adapter: 'redis' }],
  ['actions not an object', { actions: [] }],
  ['action schema not TypeBox', { actions: { 'a.b': 'string' } }],
  ['action schema a function', { actions: { 'a.b': () => true } }],
  ['action name with a space', { actions: { 'a b': Type.String() } }],
  ['authenticate not a function', { authenticate: true }],
  ['authorizeJoin not a function', { authorizeJoin: {} }],
  ['maxPayload zero', { maxPayload: 0 }],
  ['maxPayload fractional', { maxPayload: 1.5 }],
  ['maxChannelsPerConnection string', { maxChannelsPerConnection: '10' }],
  ['heartbeatInterval negative', { heartbeatInterval: -1 }],
  ['closeTimeout zero', { closeTimeout: 0 }],
  ['handshakeTimeout negative', { handshakeTimeout: -1 }],
  ['handshakeTimeout fractional', { handshakeTimeout: 2.5 }],
  ['maxDepth zero', { maxDepth: 0 }],
  ['rateLimit not an object', { rateLimit: 5 }],
  ['rateLimit.max zero', { rateLimit: { max: 0 } }],
  ['rateLimit.timeWindow fractional', { rateLimit: { timeWindow: 0.5 } }],
  ['rateLimit.perDevice without a client', { rateLimit: { perDevice: {} } }],
  ['slowConsumer unknown policy', { slowConsumer: 'kill' }],
  ['maxBufferedBytes zero', { maxBufferedBytes: 0 }],
  ['maxConnections negative', { maxConnections: -1 }],
  ['allowedOrigins a string', { allowedOrigins: 'https://a.example' }],
  ['healthRoute without slash', { healthRoute: 'health' }],
  ['authorizePublish not a function', { authorizePublish: 1 }],
  ['metrics without a client', { metrics: {} }],
  ['metrics.client not a Prometheus client', { metrics: { client: { Counter: 1 } } }],
  ['metrics.registry not a registry', { metrics: { client: promClient, registry: {} } }],
  ['metrics.prefix with a dash', { metrics: { client: promClient, prefix: 'my-app_' } }],
  ['metrics.route without slash', { metrics: { client: promClient, route: 'metrics' } }],
  ['metrics.buckets not increasing', { metrics: { client: promClient, buckets: { publish: [0.1, 0.01] } } }],
  ['asyncapi a string', { asyncapi: '/asyncapi.json' }],
  ['asyncapi.route without slash', { asyncapi: { route: 'asyncapi.json' } }],
  ['asyncapi.info.version a number', { asyncapi: { info: { version: 1 } } }],
  ['asyncapi.servers protocol http', { asyncapi: { servers: { local: { host: 'localhost', protocol: 'http' } } } }]
]

for (const [name, options] of invalid) {
  t.test(`register throws FST_REALTIME_INVALID_OPTION: ${name}`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(realtimePlugin, options as any) }, { code: 'FST_REALTIME_INVALID_OPTION' })
  })
}

t.test('custom path; defaults work without options', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtimePlugin, { path: '/live', adapter: memoryAdapter(), heartbeatInterval: 0 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const c = await connect(`ws://127.0.0.1:${port}/live?deviceId=p`)
  t.equal(c.deviceId, 'p')
  t.equal(await refusedStatus(`ws://127.0.0.1:${port}/ws`), 404, 'the default path is not registered')
  await c.close()
})

t.test('authenticate: identity and deviceId bound before the 101', async (t) => {
  const { app, url } = await startServer({
    authenticate: async (request) => {
      const token = (request.query as { token?: string }).token
      if (token === undefined) throw new Error('no token, internal detail')
      if (token === 'banned') throw Object.assign(new Error('banned'), { statusCode: 403 })
      if (token === 'bad-device') return { deviceId: 'not valid!' }
      return { deviceId: `user-${token}`, role: 'member' }
    },
    authorizeJoin: (connection, channel) => (connection.auth as { role: string }).role === 'member' && channel !== 'admin'
  })
  t.teardown(() => app.close())
  t.equal(await refusedStatus(url), 401, 'no token -> 401')
  t.equal(await refusedStatus(`${url}?token=banned`), 403, 'statusCode 403 -> 403')
  t.equal(await refusedStatus(`${url}?token=bad-device`), 403, 'an invalid deviceId from authenticate -> 403')
  t.equal(await refusedStatus(`${url}?token=42&deviceId=someone-else`), 403, 'cannot claim another deviceId')
  const c = await connect(`${url}?token=42&deviceId=user-42`)
  t.equal(c.deviceId, 'user-42', 'claiming your own deviceId is fine')
  const d = await connect(`${url}?token=7`)
  t.equal(d.deviceId, 'user-7', 'deviceId from authenticate')
  t.same(await d.join('lobby'), { type: 'joined', channel: 'lobby', id: 'join:lobby' })
  t.match(await d.request({ type: 'join', channel: 'admin', id: 1 }), { code: 'FORBIDDEN' })
  await Promise.all([c.close(), d.close()])
})

t.test('unknown options are refused, naming them (a misspelt option is never silently ignored)', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(realtimePlugin, { maxPayloads: 10 } as any) }, {
    code: 'FST_REALTIME_INVALID_OPTION', message: /unknown option "maxPayloads".*maxPayload/
  })
  const ok = Fastify()
  t.teardown(() => ok.close())
  await ok.register(realtimePlugin, { logLevel: 'warn', heartbeatInterval: 0 })
  await ok.ready()
  t.ok(ok.hasDecorator('realtime'), "Fastify's own register options (logLevel) pass")
})

t.test('registering twice in one context: a coded error that says how to run two endpoints', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtimePlugin, { heartbeatInterval: 0 })
  await t.rejects(async () => { await app.register(realtimePlugin, { path: '/other' }) }, {
    code: 'FST_REALTIME_ALREADY_REGISTERED', message: /encapsulated context/
  })
})

t.test('two endpoints from two sibling encapsulated contexts work independently', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const publishers: Record<string, (text: string) => Promise<void>> = {}
  for (const path of ['/a', '/b']) {
    await app.register(async (child) => {
      await child.register(realtimePlugin, { path, heartbeatInterval: 0, actions: { 'chat.message': Type.Object({ text: Type.String() }) } })
      publishers[path] = (text) => child.realtime.publish('room', 'chat.message', { text })
    })
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const a = await connect(`ws://127.0.0.1:${port}/a`)
  const b = await connect(`ws://127.0.0.1:${port}/b`)
  await a.join('room')
  await b.join('room')
  await publishers['/a']!('to a')
  await publishers['/b']!('to b')
  t.match(await a.next({ type: 'message' }), { payload: { text: 'to a' } }, '/a members get /a publishes')
  t.match(await b.next({ type: 'message' }), { payload: { text: 'to b' } }, '/b members get /b publishes, not /a ones')
  await Promise.all([a.close(), b.close()])
})

t.test('a refused Origin is logged at info with the origin and the option that allows it', async (t) => {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(chunk.toString())); done() } })
  const { app, url } = await startServer({}, undefined, { level: 'info', stream })
  t.teardown(() => app.close())
  t.equal(await refusedStatus(url, { headers: { origin: 'http://localhost:5173' } }), 403)
  const line = lines.find((l) => /Origin not allowed/.test(String(l.msg)))
  t.match(line, { level: 30, origin: 'http://localhost:5173', msg: /allowedOrigins/ })
})
