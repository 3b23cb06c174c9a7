/**
 * Property-based fuzzing (fast-check): random and mutated frames each get a protocol reply or the specified
 * close code; the process never crashes; a well-behaved client on the same node keeps working.
 */
import t from 'tap'
import fc from 'fast-check'
import { isUtf8 } from 'node:buffer'
import { connect, type TestClient } from './helpers/client.js'
import { startServer } from './helpers/server.js'

const WIRE_CODES = new Set(['BAD_REQUEST', 'UNKNOWN_ACTION', 'VALIDATION_FAILED', 'NOT_JOINED', 'FORBIDDEN',
  'LIMIT_EXCEEDED', 'RATE_LIMITED', 'UNAVAILABLE', 'INTERNAL'])
const REPLY_TYPES = new Set(['joined', 'left', 'ack', 'error', 'message'])

const valid = [
  { type: 'join', channel: 'fuzz', id: 1 },
  { type: 'leave', channel: 'fuzz', id: 'x' },
  { type: 'action', channel: 'fuzz', action: 'chat.message', payload: { text: 'hi' }, id: 2 },
  { type: 'action', channel: 'fuzz', action: 'cursor.move', payload: { x: 1, y: 2 } }
]

/** A valid frame with one key replaced, removed or added, with any JSON value. */
const mutated = fc.tuple(fc.constantFrom(...valid), fc.constantFrom('type', 'channel', 'action', 'payload', 'id', '__proto__', 'constructor', 'extra'),
  fc.oneof(fc.jsonValue(), fc.constant(undefined), fc.string({ unit: 'binary' })))
  .map(([frame, key, value]) => {
    const copy: Record<string, unknown> = { ...frame }
    if (value === undefined) delete copy[key]
    else copy[key] = value
    return JSON.stringify(copy).replace('"extra"', `"${key}"`)
  })

const frames = fc.oneof(
  mutated,
  fc.json(), // any JSON text
  fc.string({ unit: 'binary', maxLength: 300 }), // any text, mostly not JSON
  fc.jsonValue().map((v) => JSON.stringify({ type: 'action', channel: 'fuzz', action: 'chat.message', payload: v })),
  fc.stringMatching(/^[A-Za-z0-9:_.-]{1,20}$/).map((action) => JSON.stringify({ type: 'action', channel: 'fuzz', action, payload: {} })),
  fc.integer({ min: 1, max: 200 }).map((d) => `{"type":"join","channel":"x","id":${'['.repeat(d)}${']'.repeat(d)}}`),
  fc.constantFrom('{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"admin":true}}}', '{"type":"join","channel":"a*"}',
    '{"type":"join","channel":"../../etc"}', '{"type":"join","channel":"realtime:*"}', '\u0000', '{"type":"join","channel":"\u0000"}')
)

/** Sends `text`, then a probe; returns every frame the server sent in between. */
async function exchange (c: TestClient, text: string, n: number): Promise<Array<Record<string, any>>> {
  const before = c.frames.length
  c.send(text)
  c.send({ type: 'leave', channel: 'probe', id: `probe-${n}` })
  await c.next({ id: `probe-${n}`, type: 'left' })
  return c.frames.splice(before)
}

t.test('random and mutated frames always get a well-formed reply and never break the node', async (t) => {
  const { app, url } = await startServer({ rateLimit: false, maxChannelsPerConnection: 1000 })
  t.teardown(() => app.close())
  const fuzzer = await connect(url)
  await fuzzer.join('fuzz')
  const bystander = await connect(url)
  await bystander.join('calm')
  let n = 0
  const codes = new Map<string, number>()
  await fc.assert(fc.asyncProperty(frames, async (text) => {
    const replies = await exchange(fuzzer, text, ++n)
    for (const reply of replies) {
      if (reply.type === 'error') codes.set(reply.code, (codes.get(reply.code) ?? 0) + 1)
      if (!REPLY_TYPES.has(reply.type)) return false
      if (reply.type === 'error' && (!WIRE_CODES.has(reply.code) || typeof reply.message !== 'string')) return false
    }
    return true
  }), { numRuns: 3000, seed: Number(process.env.FUZZ_SEED ?? 42) })
  t.ok((codes.get('BAD_REQUEST') ?? 0) > 1000, `most frames were refused: ${JSON.stringify(Object.fromEntries(codes))}`)
  t.ok(['VALIDATION_FAILED', 'UNKNOWN_ACTION', 'NOT_JOINED'].every((c) => codes.has(c)), 'mutations reach past the envelope too')
  t.equal(({} as Record<string, unknown>).admin, undefined, 'no prototype pollution')
  t.same(await bystander.request({ type: 'action', channel: 'calm', action: 'chat.message', payload: { text: 'still fine' }, id: 'b' }), { type: 'ack', id: 'b' })
  t.equal(fuzzer.ws.readyState, 1, 'the fuzzing connection itself is still open: every error was recoverable')
  await Promise.all([fuzzer.close(), bystander.close()])
})

t.test('random bytes: text frames get a reply or 1007 (invalid UTF-8), binary frames 1003', async (t) => {
  const { app, url } = await startServer({ rateLimit: false })
  t.teardown(() => app.close())
  const bystander = await connect(url)
  await fc.assert(fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.boolean(), async (bytes, binary) => {
    const c = await connect(url)
    c.ws.send(Buffer.from(bytes), { binary })
    c.send({ type: 'leave', channel: 'probe', id: 'p' })
    const outcome = await Promise.race([c.next({ id: 'p' }).then(() => 'open' as const, () => 'closed' as const), c.closed.then(() => 'closed' as const)])
    if (binary) return outcome === 'closed' && (await c.closed).code === 1003
    if (outcome === 'closed') return (await c.closed).code === 1007 && !isUtf8(bytes)
    await c.close()
    return isUtf8(bytes)
  }), { numRuns: 300, seed: 7 })
  t.same(await bystander.request({ type: 'join', channel: 'after', id: 1 }), { type: 'joined', channel: 'after', id: 1 })
  await bystander.close()
})
