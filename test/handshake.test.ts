import t from 'tap'
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
