/**
 * perMessageDeflate (RFC 7692): negotiated on request only, one compression per message per node shared by every
 * member that negotiated it (counted in stats().framesDeflated), plain frames for the others, fewer bytes on the
 * wire (the clients' TCP byte counts), and correct messages: large ones, many in a row, lowered windows, and
 * receivers that keep their inflate context.
 */
import t, { type Test } from 'tap'
import type { Socket } from 'node:net'
import Type from 'typebox'
import type { FastifyInstance } from 'fastify'
import type { Realtime } from '../lib/index.js'
import { actions, startServer } from './helpers/server.js'
import { connect, type TestClient } from './helpers/client.js'

const deflateActions = { ...actions, blob: Type.Object({ text: Type.String(), i: Type.Integer() }) }

/** Some compressible text of about `bytes` bytes, different for each `i`. */
function text (i: number, bytes: number): string {
  let s = ''
  for (let k = 0; s.length < bytes; k++) s += `line ${i}.${k}: the quick brown fox jumps over the lazy dog ${k * 7919 % 1000}\n`
  return s.slice(0, bytes)
}

/** The permessage-deflate parameters the client accepted (ws's `extensions` getter lists only the names). */
function params (client: TestClient): Record<string, unknown> {
  return (client.ws as unknown as { _extensions: Record<string, { params: Record<string, unknown> }> })._extensions['permessage-deflate']?.params ?? {}
}

/** `app.realtime`, with this file's actions (the `blob` action is not in the global action registry). */
function rt (app: FastifyInstance): Realtime<any> {
  return app.realtime as Realtime<any>
}

function bytesRead (client: TestClient): number {
  return (client.ws as unknown as { _socket: Socket })._socket.bytesRead
}

async function receiveAll (t: Test, client: TestClient, name: string, expected: string[]): Promise<void> {
  let ok = 0
  for (let i = 0; i < expected.length; i++) {
    const frame = await client.next({ type: 'message' })
    if (frame.payload.i === i && frame.payload.text === expected[i]) ok++
  }
  t.equal(ok, expected.length, `${name}: every message, intact and in order`)
}

t.test('off by default: an offer of permessage-deflate is not accepted', async (t) => {
  const { app, url } = await startServer({})
  t.teardown(() => app.close())
  const a = await connect(url, { perMessageDeflate: true })
  t.equal(a.ws.extensions, '', 'no extension negotiated')
  await a.close()
})

t.test('invalid perMessageDeflate options are refused at register', async (t) => {
  for (const bad of ['yes', { level: 10 }, { level: 0 }, { threshold: -1 }, { window: 9 }, null, []]) {
    await t.rejects(startServer({ perMessageDeflate: bad as never }), { code: 'FST_REALTIME_INVALID_OPTION' }, JSON.stringify(bad))
  }
})

t.test('one compression per message per node, shared by every deflate member; plain frames for the others', async (t) => {
  const { app, url } = await startServer({ actions: deflateActions, perMessageDeflate: true })
  t.teardown(() => app.close())
  const a = await connect(url, { perMessageDeflate: true })
  const b = await connect(url, { perMessageDeflate: true })
  const c = await connect(url, { perMessageDeflate: false })
  t.equal(a.ws.extensions, 'permessage-deflate', 'a negotiated it')
  t.match(params(a), { server_no_context_takeover: true, client_no_context_takeover: true }, 'with no context takeover both ways')
  t.equal(c.ws.extensions, '', 'c did not offer it')
  for (const client of [a, b, c]) await client.join('room')

  const before = app.realtime.stats().framesDeflated
  const readBefore = [a, b, c].map(bytesRead)
  const N = 200
  const expected = Array.from({ length: N }, (_, i) => text(i, 4000))
  // Many in a row, published together: several frames share one TCP read on the clients.
  await Promise.all(expected.map(async (s, i) => await rt(app).publish('room', 'blob', { text: s, i })))
  await Promise.all([receiveAll(t, a, 'a (deflate)', expected), receiveAll(t, b, 'b (deflate)', expected), receiveAll(t, c, 'c (plain)', expected)])
  t.equal(app.realtime.stats().framesDeflated - before, N, 'compressed once per message, not once per member')
  const [ra, rb, rc] = [a, b, c].map((x, i) => bytesRead(x) - readBefore[i]!)
  t.ok(rc! > N * 4000, `the plain member read every byte (${rc})`)
  t.ok(ra! < rc! / 3 && rb! < rc! / 3, `deflate members read under a third of it (${ra}, ${rb} of ${rc})`)

  // Under the threshold (1024 bytes): plain frames, no compression.
  const small = app.realtime.stats().framesDeflated
  await rt(app).publish('room', 'blob', { text: 'short', i: 0 })
  t.equal((await a.next({ type: 'message' })).payload.text, 'short', 'a small message arrives')
  await Promise.all([b.next({ type: 'message' }), c.next({ type: 'message' })])
  t.equal(app.realtime.stats().framesDeflated, small, 'and was not compressed')
  await Promise.all([a.close(), b.close(), c.close()])
})

t.test('large messages, frames to one socket, and a client action through the extension', async (t) => {
  const { app, url } = await startServer({ actions: deflateActions, perMessageDeflate: { threshold: 100, level: 6 } })
  t.teardown(() => app.close())
  const a = await connect(url, { perMessageDeflate: true })
  const b = await connect(url)
  await a.join('big')
  await b.join('big')
  // 300 KB and 70 KB (64-bit and 16-bit frame lengths), low compressibility for part of it.
  const huge = text(1, 300_000)
  const noisy = Array.from({ length: 70_000 }, (_, k) => String.fromCharCode(33 + (k * 7919 + (k >> 3) * 104729) % 90)).join('')
  await rt(app).publish('big', 'blob', { text: huge, i: 0 })
  await rt(app).publish('big', 'blob', { text: noisy, i: 1 })
  await receiveAll(t, a, 'a', [huge, noisy])
  await receiveAll(t, b, 'b', [huge, noisy])

  // connection.send(): a frame to one socket, compressed for that socket alone.
  const before = app.realtime.stats().framesDeflated
  const conn = [...rt(app).connections()].find((x) => x.deviceId === a.deviceId)!
  conn.send('blob' as never, { text: huge, i: 0 } as never) // an action outside the global registry
  t.equal((await a.next({ type: 'message' })).payload.text, huge, 'a direct frame arrives intact')
  t.equal(app.realtime.stats().framesDeflated - before, 1, 'compressed once')

  // The client compresses its own frames too (the server inflates them).
  a.send({ type: 'action', channel: 'big', action: 'chat.message', payload: { text: text(2, 4000) }, id: 7 })
  t.equal((await a.next({ type: 'ack' })).id, 7, 'a compressed client frame is accepted')
  t.equal((await b.next({ type: 'message' })).payload.text, text(2, 4000), 'and relayed')
  await Promise.all([a.close(), b.close()])
})

t.test('a lowered server_max_window_bits gets frames of its own window; 8 bits gets plain frames', async (t) => {
  const { app, url } = await startServer({ actions: deflateActions, perMessageDeflate: true })
  t.teardown(() => app.close())
  const a = await connect(url, { perMessageDeflate: { serverMaxWindowBits: 10 } })
  const b = await connect(url, { perMessageDeflate: true })
  const c = await connect(url, { perMessageDeflate: { serverMaxWindowBits: 8 } })
  t.equal(params(a).server_max_window_bits, 10, 'a asked a 1 KiB window')
  t.equal(params(c).server_max_window_bits, 8, 'c a 256-byte one')
  for (const client of [a, b, c]) await client.join('w')
  const before = app.realtime.stats().framesDeflated
  const expected = Array.from({ length: 20 }, (_, i) => text(i, 5000))
  for (let i = 0; i < expected.length; i++) await rt(app).publish('w', 'blob', { text: expected[i]!, i })
  await Promise.all([receiveAll(t, a, 'a (10 bits)', expected), receiveAll(t, b, 'b (15 bits)', expected), receiveAll(t, c, 'c (8 bits)', expected)])
  t.equal(app.realtime.stats().framesDeflated - before, 2 * expected.length, 'once per message and window size')
  await Promise.all([a.close(), b.close(), c.close()])
})

t.test('receivers that keep their inflate context (the app registered ws with context takeover) read every message', async (t) => {
  const websocket = (await import('@fastify/websocket')).default
  const { app, url } = await startServer({ actions: deflateActions }, async (app) => {
    await app.register(websocket, { options: { perMessageDeflate: true, maxPayload: 65536 } })
  })
  t.teardown(() => app.close())
  const a = await connect(url, { perMessageDeflate: true })
  t.equal(a.ws.extensions, 'permessage-deflate', 'negotiated')
  t.notOk(params(a).server_no_context_takeover, 'the client keeps its context between messages')
  await a.join('k')
  const expected = Array.from({ length: 50 }, (_, i) => text(i, 3000))
  for (let i = 0; i < expected.length; i++) await rt(app).publish('k', 'blob', { text: expected[i]!, i })
  await receiveAll(t, a, 'a', expected)
  t.equal(app.realtime.stats().framesDeflated, expected.length, 'compressed by the plugin, once each')
  await a.close()
})
