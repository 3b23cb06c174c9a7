/**
 * The example server as a user runs it (`npm run example` without the client bundle step): a real process on a free
 * port, its health route, a chat round trip over a real WebSocket, and a clean exit on SIGTERM.
 */
import { once } from 'node:events'
import t from 'tap'
import { Parser } from '@asyncapi/parser'
import { connect } from './helpers/client.js'
import { startExample } from './helpers/example-process.js'
import { parseMetrics, sample } from './helpers/prometheus.js'

t.test('the example serves /health, /metrics and /asyncapi.json, relays chat, and exits on SIGTERM', async (t) => {
  const { port, child } = await startExample(t, { REDIS_URL: '' })

  const health = await fetch(`http://127.0.0.1:${port}/health`)
  t.equal(health.status, 200, '/health answers 200')
  t.match(await health.json(), { status: 'ok', adapter: 'ready' })

  const scrape = async (): Promise<ReturnType<typeof parseMetrics>> => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`)
    t.equal(res.status, 200)
    return parseMetrics(await res.text())
  }
  const before = await scrape()
  t.equal(sample(before, 'realtime_connections'), 0)
  t.equal(sample(before, 'realtime_frames_received_total', { type: 'action' }), 0)
  t.ok(before.families.has('process_cpu_user_seconds_total'), 'the app added Node\'s default metrics to its registry')

  const a = await connect(`ws://127.0.0.1:${port}/ws?deviceId=ex-a`)
  const b = await connect(`ws://127.0.0.1:${port}/ws?deviceId=ex-b`)
  await a.join('lobby')
  await b.join('lobby')
  t.match(await a.request({ type: 'action', channel: 'lobby', action: 'chat.message', payload: { text: 'hi' }, id: 1 }), { type: 'ack', id: 1 })
  t.match(await b.next({ type: 'message' }), { channel: 'lobby', action: 'chat.message', from: 'ex-a', payload: { text: 'hi' } })

  const after = await scrape()
  t.equal(sample(after, 'realtime_connections'), 2, 'the counts moved after a chat')
  t.equal(sample(after, 'realtime_frames_received_total', { type: 'join' }), 2)
  t.equal(sample(after, 'realtime_frames_received_total', { type: 'action' }), 1)
  t.equal(sample(after, 'realtime_actions_total', { action: 'chat.message' }), 1)
  // at least the two members the chat message reached (the example's own publishes, e.g. presence, add more)
  t.ok(sample(after, 'realtime_deliveries_total') >= 2, 'deliveries moved')

  const asyncapi = await fetch(`http://127.0.0.1:${port}/asyncapi.json`)
  t.equal(asyncapi.status, 200)
  const { document, diagnostics } = await new Parser().parse(await asyncapi.text())
  t.same(diagnostics.filter((d) => d.severity === 0).map((d) => d.message), [], 'the example\'s AsyncAPI document parses valid')
  const messages = document!.channels().get('realtime')!.messages()
  t.ok(messages.get('action.chat.message'), 'lists chat.message')
  for (const message of messages.all().filter((m) => m.id().startsWith('ack.'))) {
    t.ok((message.payload()!.json() as { properties: Record<string, unknown> }).properties.result, `${message.id()} carries the reply schema`)
  }

  const closed = Promise.all([a.closed, b.closed])
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.equal(code, 0, 'exits 0 on SIGTERM')
  t.same((await closed).map((c) => c.code), [1001, 1001], 'clients see 1001 going away')
})
