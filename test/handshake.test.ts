import t from 'tap'
import WebSocket from 'ws'
import { memoryAdapter, type RealtimeAdapter } from '../lib/index.js'
import { connect, refusedStatus } from './helpers/client.js'
import { startServer } from './helpers/server.js'

t.test('welcome carries the requested deviceId', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const c = await connect(`${url}?deviceId=abc123`)
  t.equal(c.deviceId, 'abc123')
  await c.close()
})

t.test('a missing deviceId is assigned by the server', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const c = await connect(url)
  t.match(c.deviceId, /^[A-Za-z0-9_-]{1,64}$/)
  await c.close()
})

t.test('an invalid deviceId is refused with 400 before the upgrade', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  t.equal(await refusedStatus(`${url}?deviceId=${encodeURIComponent('bad id!')}`), 400)
  t.equal(await refusedStatus(`${url}?deviceId=${'x'.repeat(65)}`), 400)
})

t.test('a plain GET gets 426 with a JSON error body', async (t) => {
  const { app, base } = await startServer()
  t.teardown(() => app.close())
  const res = await fetch(`${base}/ws`)
  t.equal(res.status, 426)
  t.match(await res.json(), { statusCode: 426, error: 'Upgrade Required' })
})

t.test('app.close() while a direct-message subscription is pending: the held 101, then the 1001, reach the client at once', async (t) => {
  // An adapter whose device-topic subscription waits for the test: the 101 is held with the welcome meanwhile.
  let subscribing: () => void = () => {}
  const called = new Promise<void>((resolve) => { subscribing = resolve })
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const base = memoryAdapter()
  const adapter: RealtimeAdapter = {
    ...base,
    async subscribe (topic, handler) {
      if (topic.startsWith('device:')) {
        subscribing()
        await gate
      }
      await base.subscribe(topic, handler)
    }
  }
  const { app, url } = await startServer({ adapter })
  const ws = new WebSocket(`${url}?deviceId=held`)
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
  ws.on('error', () => {})
  await called
  const closing = app.close()
  release()
  // Bytes left held would leave the client waiting for ws' 30 s close timeout (and app.close() with it).
  const code = await Promise.race([closed, new Promise<string>((resolve) => setTimeout(() => resolve('no close within 5 s'), 5000))])
  t.equal(code, 1001, 'the client got the 101 and the going-away close')
  await closing
})
