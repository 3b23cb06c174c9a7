/**
 * Metrics through the plugin: a fresh registry per test, real WebSocket connections over TCP, the registry scraped
 * through the plugin's route and read from the text format.
 */
import t from 'tap'
import type { Socket } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import * as client from 'prom-client'
import Type from 'typebox'
import realtimePlugin, { RealtimeError, type RealtimePluginOptions } from '../lib/index.js'
import { connect, refusedStatus } from './helpers/client.js'
import { histogramCount, labelNames, parseMetrics, sample, seriesCount, type Scrape } from './helpers/prometheus.js'
import { serverSocketsClosed } from './helpers/wait.js'

const actions = {
  'chat.message': Type.Object({ text: Type.String({ maxLength: 4096 }) }),
  'chat.save': {
    payload: Type.Object({ text: Type.String() }),
    reply: Type.Object({ id: Type.String() }),
    handler: async ({ payload }: { payload: { text: string } }) => {
      if (payload.text === 'sold out') throw new RealtimeError('OUT_OF_STOCK', 'Nothing left')
      return { id: 'm1' }
    }
  }
}

interface Node { app: FastifyInstance, url: string, registry: client.Registry }

async function start (t: { teardown: (fn: () => unknown) => void }, options: RealtimePluginOptions<any> = {}, registry = new client.Registry()): Promise<Node> {
  const app = Fastify()
  await app.register(realtimePlugin, { actions, heartbeatInterval: 0, metrics: { client, registry, route: '/metrics' }, ...options })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const { port } = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${port}/ws`, registry }
}

/** GET /metrics through the plugin's route, parsed. */
async function scrape (app: FastifyInstance): Promise<Scrape> {
  const res = await app.inject('/metrics')
  if (res.statusCode !== 200) throw new Error(`GET /metrics answered ${res.statusCode}`)
  if (res.headers['content-type'] !== 'text/plain; version=0.0.4; charset=utf-8') throw new Error(`content-type ${String(res.headers['content-type'])}`)
  return parseMetrics(res.body)
}

t.test('connections, joins, actions, errors and a refused handshake show in the scrape', async (t) => {
  const { app, url } = await start(t)
  const before = await scrape(app)
  t.equal(sample(before, 'realtime_connections'), 0)
  t.equal(sample(before, 'realtime_adapter_up'), 1)
  t.equal(sample(before, 'realtime_frames_received_total', { type: 'join' }), 0)

  const a = await connect(`${url}?deviceId=alice`)
  const b = await connect(`${url}?deviceId=bob`)
  const sent: string[] = []
  const send = (frame: unknown): void => {
    const text = typeof frame === 'string' ? frame : JSON.stringify(frame)
    sent.push(text)
    a.send(text)
  }
  send({ type: 'join', channel: 'room:1', id: 'j' })
  await a.next({ type: 'joined' })
  t.equal((await b.join('room:1')).type, 'joined')
  sent.push(JSON.stringify({ type: 'join', channel: 'room:1', id: 'join:room:1' }))
  send({ type: 'action', channel: 'room:1', action: 'chat.message', payload: { text: 'hi' }, id: 1 })
  t.same(await a.next({ type: 'ack' }), { type: 'ack', id: 1 })
  await b.next({ type: 'message' })
  await a.next({ type: 'message' })
  send({ type: 'action', action: 'chat.save', payload: { text: 'keep' }, id: 2 })
  t.same(await a.next({ id: 2 }), { type: 'ack', id: 2, result: { id: 'm1' } })
  send({ type: 'action', action: 'chat.save', payload: { text: 'sold out' }, id: 3 })
  t.equal((await a.next({ id: 3 })).code, 'OUT_OF_STOCK')
  send({ type: 'action', channel: 'room:2', action: 'chat.message', payload: { text: 'x' }, id: 4 })
  t.equal((await a.next({ id: 4 })).code, 'NOT_JOINED')
  send({ type: 'action', channel: 'room:1', action: 'chat.nope', payload: {}, id: 5 })
  t.equal((await a.next({ id: 5 })).code, 'UNKNOWN_ACTION')
  send('not json')
  t.equal((await a.next({ type: 'error' })).code, 'BAD_REQUEST')
  t.equal(await refusedStatus(`${url}?deviceId=not%20valid`), 400)
  t.equal(await refusedStatus(url, { headers: { origin: 'https://elsewhere.example' } }), 403)

  const m = await scrape(app)
  t.equal(sample(m, 'realtime_connections'), 2)
  t.equal(sample(m, 'realtime_connections_opened_total'), 2)
  t.equal(sample(m, 'realtime_channels'), 1)
  t.equal(sample(m, 'realtime_adapter_topics'), 3, 'room:1 and two device topics')
  t.equal(sample(m, 'realtime_frames_received_total', { type: 'join' }), 2)
  t.equal(sample(m, 'realtime_frames_received_total', { type: 'action' }), 5)
  t.equal(sample(m, 'realtime_frames_received_total', { type: 'invalid' }), 1)
  t.equal(sample(m, 'realtime_received_bytes_total'), sent.reduce((n, text) => n + Buffer.byteLength(text), 0))
  t.equal(sample(m, 'realtime_actions_total', { action: 'chat.message' }), 2, 'registered actions, before channel checks')
  t.equal(sample(m, 'realtime_actions_total', { action: 'chat.save' }), 2)
  t.equal(sample(m, 'realtime_deliveries_total'), 2, 'one per member reached')
  t.equal(sample(m, 'realtime_frames_sent_total', { type: 'message' }), 2)
  t.equal(sample(m, 'realtime_frames_sent_total', { type: 'welcome' }), 2)
  t.equal(sample(m, 'realtime_frames_sent_total', { type: 'joined' }), 2)
  t.equal(sample(m, 'realtime_frames_sent_total', { type: 'ack' }), 2)
  t.equal(sample(m, 'realtime_frames_sent_total', { type: 'error' }), 4)
  t.equal(sample(m, 'realtime_errors_total', { code: 'app' }), 1)
  t.equal(sample(m, 'realtime_errors_total', { code: 'NOT_JOINED' }), 1)
  t.equal(sample(m, 'realtime_errors_total', { code: 'UNKNOWN_ACTION' }), 1)
  t.equal(sample(m, 'realtime_errors_total', { code: 'BAD_REQUEST' }), 1)
  t.equal(sample(m, 'realtime_handshakes_rejected_total', { status: '400' }), 1)
  t.equal(sample(m, 'realtime_handshakes_rejected_total', { status: '403' }), 1)
  t.equal(sample(m, 'realtime_handshakes_rejected_total', { status: 'other' }), 0, 'the 101s are not counted')
  t.equal(histogramCount(m, 'realtime_publish_duration_seconds'), 1)
  t.equal(histogramCount(m, 'realtime_action_duration_seconds', { action: 'chat.save' }), 2)
  t.ok(sample(m, 'realtime_sent_bytes_total') > 0)

  const closed = serverSocketsClosed(app)
  await b.close(1000)
  await a.close(4001)
  await closed
  const after = await scrape(app)
  t.equal(sample(after, 'realtime_connections'), 0)
  t.equal(sample(after, 'realtime_connections_closed_total', { code: '1000' }), 1)
  t.equal(sample(after, 'realtime_connections_closed_total', { code: 'app' }), 1)
  t.equal(histogramCount(after, 'realtime_connection_duration_seconds'), 2)
  t.equal(sample(after, 'realtime_channels'), 0)
})

t.test('a plain GET on the endpoint counts as a refused handshake (426)', async (t) => {
  const { app } = await start(t)
  t.equal((await app.inject('/ws')).statusCode, 426)
  t.equal(sample(await scrape(app), 'realtime_handshakes_rejected_total', { status: '426' }), 1)
})

t.test('a slow consumer: closed, and counted', async (t) => {
  const { app, url } = await start(t, { maxBufferedBytes: 16 * 1024 })
  const slow = await connect(url)
  await slow.join('room:slow')
  // The client stops reading: the server's unsent data grows past maxBufferedBytes.
  ;(slow.ws as unknown as { _socket: Socket })._socket.pause()
  const text = 'x'.repeat(4000)
  for (let i = 0; i < 5000 && app.realtime.stats().slowConsumersClosed === 0; i++) {
    await app.realtime.publish('room:slow', 'chat.message', { text })
  }
  t.equal(app.realtime.stats().slowConsumersClosed, 1)
  const m = await scrape(app)
  t.equal(sample(m, 'realtime_slow_consumers_closed_total'), 1)
  t.ok(sample(m, 'realtime_deliveries_total') >= 1)
  t.equal(sample(m, 'realtime_deliveries_dropped_total'), 0)
  t.equal(histogramCount(m, 'realtime_publish_duration_seconds') > 0, true, 'server publishes are timed')
  slow.ws.terminate()
})

t.test('cardinality: 100 distinct channels and deviceIds leave the number of series unchanged', async (t) => {
  const { app, url } = await start(t, { maxChannelsPerConnection: 100 })
  const warm = await connect(`${url}?deviceId=warm`)
  await warm.join('warm')
  warm.send({ type: 'action', channel: 'warm', action: 'chat.message', payload: { text: 'w' }, id: 1 })
  await warm.next({ type: 'ack' })
  const closed = serverSocketsClosed(app)
  await warm.close(1000)
  await closed
  const before = await scrape(app)

  for (let batch = 0; batch < 100; batch += 20) {
    const clients = await Promise.all(Array.from({ length: 20 }, async (_, i) => connect(`${url}?deviceId=device-${batch + i}`)))
    await Promise.all(clients.map(async (c, i) => {
      await c.join(`room:${batch + i}`)
      c.send({ type: 'action', channel: `room:${batch + i}`, action: 'chat.message', payload: { text: 'hi' }, id: 1 })
      await c.next({ type: 'ack' })
    }))
    const gone = serverSocketsClosed(app)
    await Promise.all(clients.map((c) => c.close(1000)))
    await gone
  }
  const after = await scrape(app)
  t.equal(seriesCount(after), seriesCount(before), 'the same series')
  t.equal(sample(after, 'realtime_connections_opened_total'), 101)
  t.equal(sample(after, 'realtime_frames_received_total', { type: 'join' }), 101)
  t.same([...labelNames(after)].sort(), ['action', 'code', 'status', 'type'])
  t.notOk(/device-|room:/.test(after.text), 'no deviceId or channel in any label')
})

t.test('two apps one after the other on one registry both work; two at once fail with the coded error', async (t) => {
  const registry = new client.Registry()
  const first = Fastify()
  await first.register(realtimePlugin, { actions, heartbeatInterval: 0, metrics: { client, registry } })
  await first.ready()
  const second = Fastify()
  await t.rejects(async () => {
    await second.register(realtimePlugin, { actions, heartbeatInterval: 0, metrics: { client, registry } })
  }, { code: 'FST_REALTIME_METRICS_CONFLICT', message: /realtime_connections.*another metrics\.registry or metrics\.prefix/ })
  await second.close()
  t.ok(registry.getSingleMetric('realtime_connections'), 'the first app keeps its metrics')
  await first.close()
  t.same(await registry.getMetricsAsJSON(), [], 'removed on close')

  const { app, url } = await start(t, {}, registry)
  const c = await connect(url)
  t.equal(sample(await scrape(app), 'realtime_connections'), 1, 'a later app on the same registry works')
  t.equal(sample(await scrape(app), 'realtime_connections_opened_total'), 1, 'and starts from zero')
  await c.close()

  const other = Fastify()
  t.teardown(() => other.close())
  await other.register(realtimePlugin, { actions, heartbeatInterval: 0, metrics: { client, registry, prefix: 'node2_' } })
  await other.ready()
  t.ok(registry.getSingleMetric('node2_connections'), 'another prefix on the same registry works at once')
})

t.test('the default registry is the client\'s global one; never Node\'s default metrics', async (t) => {
  const app = Fastify()
  await app.register(realtimePlugin, { actions, heartbeatInterval: 0, metrics: { client, prefix: 'global_' } })
  await app.ready()
  const names = (await client.register.getMetricsAsJSON()).map((metric) => metric.name)
  t.ok(names.includes('global_connections'))
  t.notOk(names.some((name) => /^(process_|nodejs_)/.test(name)), 'no default metrics registered by the plugin')
  await app.close()
  t.notOk(client.register.getSingleMetric('global_connections'))
})

t.test('the routes are hidden from HTTP docs; without metrics there is no route and no metric', async (t) => {
  const hidden: Record<string, unknown> = {}
  const app = Fastify()
  app.addHook('onRoute', (route) => { hidden[route.url] = (route.schema as { hide?: boolean } | undefined)?.hide })
  const registry = new client.Registry()
  await app.register(realtimePlugin, { actions, heartbeatInterval: 0, metrics: { client, registry, route: '/metrics' }, asyncapi: true })
  await app.ready()
  t.teardown(() => app.close())
  t.same(hidden, { '/ws': true, '/metrics': true, '/asyncapi.json': true })

  const plain = Fastify()
  t.teardown(() => plain.close())
  await plain.register(realtimePlugin, { actions, heartbeatInterval: 0 })
  t.equal((await plain.inject('/metrics')).statusCode, 404)
  t.equal((await plain.inject('/asyncapi.json')).statusCode, 404)
})

t.test('the app serves the registry itself when metrics.route is not set', async (t) => {
  const registry = new client.Registry()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtimePlugin, { actions, heartbeatInterval: 0, metrics: { client, registry } })
  app.get('/custom-metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()))
  t.equal((await app.inject('/metrics')).statusCode, 404)
  const res = await app.inject('/custom-metrics')
  t.equal(sample(parseMetrics(res.body), 'realtime_connections'), 0)
})

t.test('an upgrade refused by @fastify/rate-limit (before the route\'s own checks) counts as 429', async (t) => {
  const rateLimit = (await import('@fastify/rate-limit')).default
  const registry = new client.Registry()
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(rateLimit, { max: 1, timeWindow: 60_000 })
  await app.register(realtimePlugin, { actions, heartbeatInterval: 0, metrics: { client, registry } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const a = await connect(`ws://127.0.0.1:${port}/ws`)
  t.equal(await refusedStatus(`ws://127.0.0.1:${port}/ws`), 429)
  const m = parseMetrics(await registry.metrics())
  t.equal(sample(m, 'realtime_handshakes_rejected_total', { status: '429' }), 1)
  t.equal(sample(m, 'realtime_connections_opened_total'), 1)
  await a.close()
})

t.test('with history and presence: recoveries_total and the reset/presence frame types exist', async (t) => {
  const { app, url } = await start(t, { history: { size: 10, ttl: 60_000 }, presence: true })
  const a = await connect(url)
  a.send({ type: 'join', channel: 'room:h', id: 'j1', since: { epoch: 'nope', offset: 3 } })
  t.match(await a.next({ type: 'joined' }), { recovered: false })
  const m = await scrape(app)
  t.equal(sample(m, 'realtime_recoveries_total', { outcome: 'not_recovered' }), 1)
  t.equal(sample(m, 'realtime_recoveries_total', { outcome: 'recovered' }), 0)
  t.equal(sample(m, 'realtime_frames_sent_total', { type: 'presence' }), 1)
  t.equal(sample(m, 'realtime_frames_sent_total', { type: 'reset' }), 0)
  await a.close()
})
