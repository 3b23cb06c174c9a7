import t from 'tap'
import * as client from 'prom-client'
import { METRICS } from '../lib/metric-catalogue.js'
import { createMetrics, NO_METRICS, type MetricsShape, type MetricsSource } from '../lib/metrics.js'
import { resolveMetricsOptions, type MetricsOptions } from '../lib/metrics-options.js'
import { histogramCount, labelNames, parseMetrics, sample, seriesCount } from './helpers/prometheus.js'

interface Setup {
  registry: client.Registry
  source: MetricsSource
  /** What the gauges read. */
  state: { connections: number, channels: number, topics: number, inflight: number, up: number }
  /** The shared event counters (lib/counters.ts) the metrics read. */
  counters: { deliveriesDropped: number, slowConsumersClosed: number, floodsClosed: number }
  shape: MetricsShape
}

function setup (registry = new client.Registry()): Setup {
  const state = { connections: 0, channels: 0, topics: 0, inflight: 0, up: 1 }
  const counters = { deliveriesDropped: 0, slowConsumersClosed: 0, floodsClosed: 0 }
  const source: MetricsSource = {
    connections: () => state.connections,
    channels: () => state.channels,
    topics: () => state.topics,
    inflight: () => state.inflight,
    adapterUp: () => state.up === 1,
    counters
  }
  return { registry, source, state, counters, shape: { actions: ['chat.message', 'chat.save'], handledActions: ['chat.save'] } }
}

const scrape = async (registry: client.Registry): Promise<ReturnType<typeof parseMetrics>> => parseMetrics(await registry.metrics())

t.test('gauges are read at scrape time; counters add what was tallied since the last scrape', async (t) => {
  const { registry, source, state, counters, shape } = setup()
  const metrics = createMetrics(resolveMetricsOptions({ client, registry })!, source, shape)
  t.teardown(metrics.close)

  let families = await scrape(registry)
  t.equal(sample(families, 'realtime_connections'), 0)
  t.equal(sample(families, 'realtime_adapter_up'), 1)
  t.equal(sample(families, 'realtime_frames_received_total', { type: 'join' }), 0, 'closed label sets start at 0')

  state.connections = 3
  state.channels = 2
  state.topics = 5
  state.inflight = 1
  state.up = 0
  counters.slowConsumersClosed = 1
  counters.deliveriesDropped = 4
  counters.floodsClosed = 2
  for (let i = 0; i < 3; i++) metrics.connectionOpened()
  metrics.bytesReceived(40)
  metrics.frameReceived('join')
  metrics.bytesReceived(60)
  metrics.frameReceived('action')
  metrics.bytesReceived(7)
  metrics.frameReceived('invalid')
  const welcome = JSON.stringify({ type: 'welcome', deviceId: 'é' })
  metrics.frameSent(welcome)
  metrics.frameSent('{"type":"joined","channel":"a"}')
  metrics.delivered(10, 50)
  metrics.action('chat.message')
  metrics.action('chat.save')
  metrics.error('NOT_JOINED')
  metrics.error('OUT_OF_STOCK')
  metrics.handshakeRejected(403)
  metrics.adapterError()
  metrics.connectionClosed(1000, metrics.now())
  metrics.connectionClosed(4001, metrics.now())
  metrics.actionDone('chat.save', metrics.now())
  metrics.publishDone(metrics.now())

  families = await scrape(registry)
  t.equal(sample(families, 'realtime_connections'), 3)
  t.equal(sample(families, 'realtime_channels'), 2)
  t.equal(sample(families, 'realtime_adapter_topics'), 5)
  t.equal(sample(families, 'realtime_publishes_inflight'), 1)
  t.equal(sample(families, 'realtime_adapter_up'), 0)
  t.equal(sample(families, 'realtime_connections_opened_total'), 3)
  t.equal(sample(families, 'realtime_frames_received_total', { type: 'join' }), 1)
  t.equal(sample(families, 'realtime_frames_received_total', { type: 'action' }), 1)
  t.equal(sample(families, 'realtime_frames_received_total', { type: 'invalid' }), 1)
  t.equal(sample(families, 'realtime_received_bytes_total'), 107)
  t.equal(sample(families, 'realtime_frames_sent_total', { type: 'message' }), 10, 'one message frame per member reached')
  t.equal(sample(families, 'realtime_frames_sent_total', { type: 'welcome' }), 1)
  t.equal(sample(families, 'realtime_frames_sent_total', { type: 'joined' }), 1)
  t.equal(sample(families, 'realtime_sent_bytes_total'), Buffer.byteLength(welcome) + 31 + 10 * 50, 'bytes, not characters')
  t.equal(sample(families, 'realtime_deliveries_total'), 10)
  t.equal(sample(families, 'realtime_actions_total', { action: 'chat.message' }), 1)
  t.equal(sample(families, 'realtime_errors_total', { code: 'NOT_JOINED' }), 1)
  t.equal(sample(families, 'realtime_errors_total', { code: 'app' }), 1, 'an application code counts as app')
  t.equal(sample(families, 'realtime_handshakes_rejected_total', { status: '403' }), 1)
  t.equal(sample(families, 'realtime_adapter_errors_total'), 1)
  t.equal(sample(families, 'realtime_connections_closed_total', { code: '1000' }), 1)
  t.equal(sample(families, 'realtime_connections_closed_total', { code: 'app' }), 1, '4000-4999 count as app')
  t.equal(sample(families, 'realtime_slow_consumers_closed_total'), 1, 'read from the shared counters')
  t.equal(sample(families, 'realtime_deliveries_dropped_total'), 4)
  t.equal(sample(families, 'realtime_floods_closed_total'), 2)
  t.equal(histogramCount(families, 'realtime_action_duration_seconds', { action: 'chat.save' }), 1)
  t.equal(histogramCount(families, 'realtime_publish_duration_seconds'), 1)
  t.equal(histogramCount(families, 'realtime_connection_duration_seconds'), 2)
  t.equal(families.families.get('realtime_action_duration_seconds')!.type, 'HISTOGRAM')
  t.equal(families.families.get('realtime_connections')!.type, 'GAUGE')

  metrics.delivered(2, 50)
  families = await scrape(registry)
  t.equal(sample(families, 'realtime_deliveries_total'), 12, 'a second scrape adds only the difference')
  t.equal(sample(families, 'realtime_connections_opened_total'), 3)
  t.equal(sample(families, 'realtime_slow_consumers_closed_total'), 1)
})

t.test('cardinality: unknown inputs land in closed fallbacks, the series count never grows', async (t) => {
  const { registry, source, shape } = setup()
  const metrics = createMetrics(resolveMetricsOptions({ client, registry })!, source, shape)
  t.teardown(metrics.close)
  const before = seriesCount(await scrape(registry))
  for (let i = 0; i < 100; i++) {
    metrics.error(`APP_CODE_${i}`)
    metrics.connectionClosed(1100 + i, metrics.now())
    metrics.handshakeRejected(600 + i)
    metrics.action(`not.registered.${i}`)
    metrics.frameReceived(`bogus${i}`)
    metrics.frameSent(`{"type":"bogus${i}"}`)
    metrics.frameSent(`not a frame ${i}`)
    metrics.actionDone(`not.handled.${i}`, metrics.now())
  }
  const families = await scrape(registry)
  t.equal(seriesCount(families), before, 'no new series')
  t.equal(sample(families, 'realtime_errors_total', { code: 'app' }), 100)
  t.equal(sample(families, 'realtime_connections_closed_total', { code: 'other' }), 100)
  t.equal(sample(families, 'realtime_handshakes_rejected_total', { status: 'other' }), 100)
  t.same([...labelNames(families)].sort(), ['action', 'code', 'status', 'type'])
})

t.test('only the plugin\'s own metrics: no Node default metrics', async (t) => {
  const { registry, source, shape } = setup()
  const metrics = createMetrics(resolveMetricsOptions({ client, registry, prefix: 'chat_' })!, source, shape)
  t.teardown(metrics.close)
  const names = [...(await scrape(registry)).families.keys()]
  t.ok(names.length >= 22)
  t.same(names.filter((name) => !name.startsWith('chat_')), [], 'every name carries the prefix')
  t.notOk(names.some((name) => /process_|nodejs_/.test(name)))
})

t.test('a name clash with a live instance is FST_REALTIME_METRICS_CONFLICT; close frees the names', async (t) => {
  const { registry, source, shape } = setup()
  const first = createMetrics(resolveMetricsOptions({ client, registry })!, source, shape)
  t.throws(() => createMetrics(resolveMetricsOptions({ client, registry })!, source, shape), {
    code: 'FST_REALTIME_METRICS_CONFLICT', message: /realtime_connections.*metrics\.registry or metrics\.prefix/
  })
  const other = createMetrics(resolveMetricsOptions({ client, registry, prefix: 'node2_' })!, source, shape)
  first.connectionOpened()
  t.equal(sample(await scrape(registry), 'realtime_connections_opened_total'), 1, 'the first instance is intact')
  first.close()
  first.close()
  const names = [...(await scrape(registry)).families.keys()]
  t.notOk(names.some((name) => name.startsWith('realtime_')), 'removed on close')
  t.ok(names.some((name) => name.startsWith('node2_')), 'the other instance keeps its metrics')
  const second = createMetrics(resolveMetricsOptions({ client, registry })!, source, shape)
  second.connectionOpened()
  t.equal(sample(await scrape(registry), 'realtime_connections_opened_total'), 1, 'a later instance starts fresh')
  second.close()
  other.close()
  t.equal(seriesCount(await scrape(registry)), 0)
})

t.test('a clash with the app\'s own metric; close leaves a metric it did not create', async (t) => {
  const registry = new client.Registry()
  const { source, shape } = setup(registry)
  t.ok(new client.Gauge({ name: 'realtime_adapter_up', help: 'the app\'s', registers: [registry] }))
  t.throws(() => createMetrics(resolveMetricsOptions({ client, registry })!, source, shape), { code: 'FST_REALTIME_METRICS_CONFLICT' })
  t.same([...(await scrape(registry)).families.keys()], ['realtime_adapter_up'], 'nothing half-created')
  registry.removeSingleMetric('realtime_adapter_up')
  const metrics = createMetrics(resolveMetricsOptions({ client, registry })!, source, shape)
  registry.removeSingleMetric('realtime_channels')
  const replacement = new client.Gauge({ name: 'realtime_channels', help: 'the app\'s', registers: [registry] })
  metrics.close()
  t.same([...(await scrape(registry)).families.keys()], ['realtime_channels'])
  t.equal(registry.getSingleMetric('realtime_channels'), replacement)
})

t.test('the default registry is the client\'s global one', async (t) => {
  const { source, shape } = setup()
  const metrics = createMetrics(resolveMetricsOptions({ client, prefix: 'global_test_' })!, source, shape)
  t.ok(client.register.getSingleMetric('global_test_connections'))
  metrics.close()
  t.notOk(client.register.getSingleMetric('global_test_connections'))
})

t.test('history adds recoveries_total{outcome}', async (t) => {
  const { registry, source, shape } = setup()
  const metrics = createMetrics(resolveMetricsOptions({ client, registry })!, source, { ...shape, history: true, receivedFrameTypes: ['history'] })
  t.teardown(metrics.close)
  metrics.recovery('recovered')
  metrics.frameReceived('history')
  const families = await scrape(registry)
  t.equal(sample(families, 'realtime_recoveries_total', { outcome: 'recovered' }), 1)
  t.equal(sample(families, 'realtime_recoveries_total', { outcome: 'not_recovered' }), 0)
  t.equal(sample(families, 'realtime_frames_received_total', { type: 'history' }), 1)
})

t.test('NO_METRICS: every method is callable and does nothing; now() reads no clock', async (t) => {
  t.equal(NO_METRICS.now(), 0)
  t.ok(Object.isFrozen(NO_METRICS))
  for (const [name, fn] of Object.entries(NO_METRICS)) {
    t.equal(typeof fn, 'function', name)
    t.equal((fn as (...args: unknown[]) => unknown)('x', 1), name === 'now' ? 0 : undefined)
  }
})

t.test('metrics option validation', async (t) => {
  t.equal(resolveMetricsOptions(undefined), undefined)
  t.equal(resolveMetricsOptions(false), undefined)
  // prom-client's module and Registry fit the option's structural types (checked by npm run typecheck)
  const typed: MetricsOptions = { client, registry: new client.Registry() }
  t.equal(resolveMetricsOptions(typed)!.registry, typed.registry)
  const resolved = resolveMetricsOptions({ client })!
  t.equal(resolved.registry, client.register)
  t.equal(resolved.prefix, 'realtime_')
  t.equal(resolved.route, undefined)
  t.equal(resolveMetricsOptions({ client, prefix: '' })!.prefix, '')
  t.same(resolveMetricsOptions({ client, buckets: { publish: [0.001, 0.01] } })!.buckets.publish, [0.001, 0.01])
  for (const bad of [
    true, null, {}, { client: {} }, { client: { Counter () {}, Gauge () {} } },
    { client, registry: {} }, { client: { Counter () {}, Gauge () {}, Histogram () {} } },
    { client, prefix: 'bad-prefix' }, { client, prefix: 'a:b' }, { client, prefix: 1 }, { client, route: 'metrics' },
    { client, buckets: 1 }, { client, buckets: { action: [] } }, { client, buckets: { action: [1, 1] } },
    { client, buckets: { connection: [-1, 2] } }, { client, buckets: { publish: ['1'] } }
  ]) {
    t.throws(() => resolveMetricsOptions(bad), { code: 'FST_REALTIME_INVALID_OPTION' }, JSON.stringify(bad))
  }
})

t.test('the scrape matches the catalogue: every name, type and label name', async (t) => {
  const { registry, source, shape } = setup()
  const metrics = createMetrics(resolveMetricsOptions({ client, registry })!, source, { ...shape, history: true })
  t.teardown(metrics.close)
  metrics.actionDone('chat.save', metrics.now())
  const { families, text } = await scrape(registry)
  t.same([...families.keys()].sort(), Object.keys(METRICS).map((name) => `realtime_${name}`).sort())
  for (const [name, definition] of Object.entries(METRICS)) {
    t.equal(families.get(`realtime_${name}`)!.type, definition.type.toUpperCase(), `${name} type`)
    t.equal(families.get(`realtime_${name}`)!.help, definition.help, `${name} help`)
    const used = new Set<string>()
    for (const line of text.split('\n').filter((l) => l.startsWith(`realtime_${name}`) && /^realtime_\w+[{ ]/.test(l))) {
      const sampleName = line.slice(0, line.search(/[{ ]/))
      if (sampleName !== `realtime_${name}` && !/_(bucket|sum|count)$/.test(sampleName)) continue
      for (const [, label] of line.matchAll(/(\w+)="/g)) if (label !== 'le') used.add(label!)
    }
    t.same([...used].sort(), [...definition.labels].sort(), `${name} labels`)
  }
})
