import t from 'tap'
import WebSocket from 'ws'
import { buildJwtApp } from '../examples/jwt.js'
import { connect, refusedStatus } from './helpers/client.js'

t.test('JWT example: token in the query or as a subprotocol, deviceId bound to the subject', async (t) => {
  const app = await buildJwtApp('test-secret-test-secret')
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const url = `ws://127.0.0.1:${port}/ws`
  const res = await fetch(`http://127.0.0.1:${port}/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'ada' }) })
  const { token } = await res.json() as { token: string }

  const viaQuery = await connect(`${url}?token=${token}`)
  t.equal(viaQuery.deviceId, 'ada')
  t.equal(await refusedStatus(url), 401, 'no token: refused before the 101')
  const withProtocol = new WebSocket(url, ['bearer', token])
  const welcome = await new Promise<string>((resolve) => withProtocol.once('message', (d) => resolve(d.toString())))
  t.same(JSON.parse(welcome), { type: 'welcome', deviceId: 'ada' })
  t.equal(withProtocol.protocol, 'bearer', 'the server answered the bearer subprotocol')
  withProtocol.close()

  t.equal(await refusedStatus(`${url}?token=not-a-jwt`), 401)
  t.equal(await refusedStatus(`${url}?token=${token}&deviceId=grace`), 403, 'cannot claim another deviceId')
  t.same(await viaQuery.join('user:ada'), { type: 'joined', channel: 'user:ada', id: 'join:user:ada' })
  t.match(await viaQuery.request({ type: 'join', channel: 'user:grace', id: 1 }), { code: 'FORBIDDEN' })
  await viaQuery.close()
})
