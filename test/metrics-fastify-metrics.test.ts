/**
 * Metrics with fastify-metrics (13.x, the line that runs on Node 20): the README's two-line setup, verbatim in spirit.
 * fastify-metrics serves `/metrics` from its client's registry; the plugin creates its series in that registry
 * through `app.metrics.client`, so one scrape shows the app's HTTP metrics and the realtime ones together.
 * Its own file: fastify-metrics registers into prom-client's global registry, which one process can hold once.
 */
import t from 'tap'
import Fastify from 'fastify'
import fastifyMetrics from 'fastify-metrics'
import Type from 'typebox'
import realtimePlugin from '../lib/index.js'
import { connect } from './helpers/client.js'
import { parseMetrics, sample } from './helpers/prometheus.js'

t.test('fastify-metrics serves the realtime series from its own registry, and they are gone after close', async (t) => {
  const app = Fastify()
  // fastify-metrics is CommonJS with `exports.default`: from ESM its plugin is the module's `default` property.
  await app.register(fastifyMetrics.default, { endpoint: '/metrics', defaultMetrics: { enabled: false } })
  await app.register(realtimePlugin, {
    actions: { 'chat.message': Type.Object({ text: Type.String() }) },
    heartbeatInterval: 0,
    metrics: { client: app.metrics.client }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  let closed = false
  t.teardown(async () => { if (!closed) await app.close() })
  const { port } = app.server.address() as { port: number }

  const scrape = async (): Promise<ReturnType<typeof parseMetrics>> => {
    const res = await app.inject('/metrics')
    t.equal(res.statusCode, 200, 'fastify-metrics answers /metrics')
    return parseMetrics(res.body)
  }

  const before = await scrape()
  t.equal(sample(before, 'realtime_connections'), 0)
  t.equal(sample(before, 'realtime_adapter_up'), 1)

  const a = await connect(`ws://127.0.0.1:${port}/ws?deviceId=alice`)
  const b = await connect(`ws://127.0.0.1:${port}/ws?deviceId=bob`)
  await a.join('room:1')
  await b.join('room:1')
  a.send(JSON.stringify({ type: 'action', channel: 'room:1', action: 'chat.message', payload: { text: 'hi' }, id: 1 }))
  await a.next({ type: 'ack' })
  await b.next({ type: 'message' })
  await a.next({ type: 'message' })

  const after = await scrape()
  t.equal(sample(after, 'realtime_connections'), 2)
  t.equal(sample(after, 'realtime_channels'), 1)
  t.equal(sample(after, 'realtime_actions_total', { action: 'chat.message' }), 1)
  t.equal(sample(after, 'realtime_deliveries_total'), 2, 'one delivery per member reached')
  t.ok(after.families.has('http_request_duration_seconds'), 'the app\'s own route metrics are in the same scrape')
  t.notOk(after.families.has('process_cpu_user_seconds_total'), 'the plugin registers no default metrics')

  a.close()
  b.close()
  await app.close()
  closed = true
  const left = (await app.metrics.client.register.getMetricsAsJSON()).map((m) => m.name).filter((n) => n.startsWith('realtime_'))
  t.same(left, [], 'the realtime series are removed from the global registry on close')
})
