/**
 * Handled actions (issue 9): the handler's reply in `ack.result`, RealtimeError codes, INTERNAL without leaks,
 * reply schema checks, TIMEOUT, channel-less calls, and frame order behind a pending handler.
 */
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import Type from 'typebox'
import realtimePlugin, { RealtimeError, defineAction, memoryAdapter, redisAdapter, type RealtimePluginOptions } from '../lib/index.js'
import { connect } from './helpers/client.js'
import { startRedis } from './helpers/redis.js'

/** Collects the JSON log lines of a Fastify app. */
function logSink (): { stream: Writable, lines: Array<Record<string, any>> } {
  const lines: Array<Record<string, any>> = []
  const stream = new Writable({
    write (chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line))
      done()
    }
  })
  return { stream, lines }
}

async function start (t: Test, options: RealtimePluginOptions<any>, stream?: Writable): Promise<{ url: string, app: ReturnType<typeof Fastify> }> {
  const app = Fastify({ logger: stream === undefined ? false : { level: 'warn', stream } })
  t.teardown(() => app.close())
  await app.register(realtimePlugin, { adapter: memoryAdapter(), heartbeatInterval: 0, ...options })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { url: `ws://127.0.0.1:${port}/ws`, app }
}

/** A promise with its resolve function, to hold a handler open. */
function gate<T = void> (): { promise: Promise<T>, open: (value: T) => void } {
  let open!: (value: T) => void
  const promise = new Promise<T>((resolve) => { open = resolve })
  return { promise, open }
}

const Message = Type.Object({ text: Type.String({ minLength: 1 }) }, { additionalProperties: false })

t.test('a handled action: typed call, reply in ack.result, nothing fanned out unless the handler publishes', async (t) => {
  const calls: Array<{ deviceId: string, channel: string | undefined, action: string, text: string }> = []
  const fanout = { on: false }
  const holder: { app?: ReturnType<typeof Fastify> } = {}
  const server = await start(t, {
    actions: {
      'chat.relay': Message,
      'chat.send': defineAction({
        payload: Message,
        reply: Type.Object({ id: Type.String(), at: Type.Integer() }),
        async handler ({ connection, channel, action, payload }) {
          calls.push({ deviceId: connection.deviceId, channel, action, text: payload.text })
          if (fanout.on) await holder.app!.realtime.publish(channel!, 'chat.relay', { text: `stored: ${payload.text}` })
          return { id: `m${calls.length}`, at: 1700000000000 }
        }
      }),
      'chat.void': defineAction({ payload: Type.Object({}), handler: () => undefined })
    }
  })
  holder.app = server.app
  const sender = await connect(`${server.url}?deviceId=alice`)
  const member = await connect(`${server.url}?deviceId=bob`)
  await sender.join('room')
  await member.join('room')

  t.same(await sender.request({ type: 'action', channel: 'room', action: 'chat.send', payload: { text: 'hi' }, id: 1 }),
    { type: 'ack', id: 1, result: { id: 'm1', at: 1700000000000 } })
  t.same(calls, [{ deviceId: 'alice', channel: 'room', action: 'chat.send', text: 'hi' }])
  t.same(await sender.request({ type: 'action', channel: 'room', action: 'chat.void', payload: {}, id: 2 }), { type: 'ack', id: 2 },
    'no result key when the handler resolves undefined')
  // A relay afterwards is the first message anyone receives: the handled action was not fanned out.
  sender.send({ type: 'action', channel: 'room', action: 'chat.relay', payload: { text: 'relay' } })
  t.same(await member.next({ type: 'message' }), { type: 'message', channel: 'room', action: 'chat.relay', payload: { text: 'relay' }, from: 'alice' })
  t.same(await sender.next({ type: 'message' }), { type: 'message', channel: 'room', action: 'chat.relay', payload: { text: 'relay' }, from: 'alice' })

  fanout.on = true
  t.same(await sender.request({ type: 'action', channel: 'room', action: 'chat.send', payload: { text: 'x' }, id: 3 }),
    { type: 'ack', id: 3, result: { id: 'm2', at: 1700000000000 } })
  t.same(await member.next({ type: 'message' }), { type: 'message', channel: 'room', action: 'chat.relay', payload: { text: 'stored: x' }, from: null },
    'the handler publishes what it stored')
  t.same(await sender.request({ type: 'action', channel: 'room', action: 'chat.send', payload: { text: '' }, id: 4 }),
    { type: 'error', code: 'VALIDATION_FAILED', message: 'Payload of "chat.send" is invalid', id: 4, details: [{ path: '/payload/text', message: 'must not have fewer than 1 characters' }] },
    'the payload is validated before the handler runs')
  t.equal(calls.length, 2)
  t.same(await sender.request({ type: 'action', channel: 'other', action: 'chat.send', payload: { text: 'x' }, id: 5 }),
    { type: 'error', code: 'NOT_JOINED', message: 'Join "other" before publishing to it', id: 5 }, 'with a channel, it must be joined')
  await Promise.all([sender.close(), member.close()])
})

t.test('a handler whose own publish is refused (Redis unreachable) answers UNAVAILABLE, not INTERNAL', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const sink = logSink()
  const { app } = await start(t, {
    adapter: redisAdapter({ url: redis.url }),
    actions: {
      'chat.send': defineAction({
        payload: Message,
        reply: Type.Object({ ok: Type.Boolean() }),
        async handler ({ channel, payload }) {
          await app.realtime.publish(channel!, 'chat.send', payload)
          return { ok: true }
        }
      })
    }
  }, sink.stream)
  const { port } = app.server.address() as { port: number }
  const c = await connect(`ws://127.0.0.1:${port}/ws`)
  t.match(await c.request({ type: 'join', channel: 'room', id: 1 }), { type: 'joined', channel: 'room' })
  t.same(await c.request({ type: 'action', channel: 'room', action: 'chat.send', payload: { text: 'up' }, id: 2 }),
    { type: 'ack', id: 2, result: { ok: true } }, 'answered while Redis is up')
  await redis.stop()
  t.same(await c.request({ type: 'action', channel: 'room', action: 'chat.send', payload: { text: 'down' }, id: 3 }),
    { type: 'error', code: 'UNAVAILABLE', message: 'The message was not delivered, retry later', id: 3 })
  t.ok(sink.lines.some((l) => l.msg === 'fastify-realtime: action handler failed on an unreachable backend, answered UNAVAILABLE' && l.level === 40),
    'logged once as a warning with its cause')
  t.notOk(sink.lines.some((l) => /answered INTERNAL/.test(String(l.msg))), 'not an INTERNAL error')
  await c.close()
})

t.test('RealtimeError answers its code, message and details; other throws answer INTERNAL without their message', async (t) => {
  const sink = logSink()
  const { url } = await start(t, {
    actions: {
      'room.enter': {
        payload: Type.Object({ room: Type.String() }),
        handler: async ({ payload }: { payload: { room: string } }) => {
          if (payload.room === 'full') throw new RealtimeError('ROOM_FULL', 'The room is full', { max: 2 })
          if (payload.room === 'builtin') throw new RealtimeError('FORBIDDEN', 'Members only')
          if (payload.room === 'sync') throw new Error('secret sync detail')
          throw new Error('secret database password')
        }
      },
      'bad.code': { payload: Type.Object({}), handler: () => { throw new RealtimeError('lower', 'x') } }
    },
    authorizePublish: () => true
  }, sink.stream)
  const c = await connect(url)
  t.same(await c.request({ type: 'action', action: 'room.enter', payload: { room: 'full' }, id: 1 }),
    { type: 'error', code: 'ROOM_FULL', message: 'The room is full', id: 1, details: { max: 2 } })
  t.same(await c.request({ type: 'action', action: 'room.enter', payload: { room: 'builtin' }, id: 2 }),
    { type: 'error', code: 'FORBIDDEN', message: 'Members only', id: 2 })
  t.same(await c.request({ type: 'action', action: 'room.enter', payload: { room: 'other' }, id: 3 }),
    { type: 'error', code: 'INTERNAL', message: 'Internal error', id: 3 })
  t.same(await c.request({ type: 'action', action: 'room.enter', payload: { room: 'sync' }, id: 4 }),
    { type: 'error', code: 'INTERNAL', message: 'Internal error', id: 4 })
  t.same(await c.request({ type: 'action', action: 'bad.code', payload: {}, id: 5 }),
    { type: 'error', code: 'INTERNAL', message: 'Internal error', id: 5 }, 'an invalid application code is a server bug')
  const errors = sink.lines.filter((l) => l.msg === 'fastify-realtime: action handler failed, answered INTERNAL')
  t.same(errors.map((l) => l.err.message), ['secret database password', 'secret sync detail', 'RealtimeError code must match ^[A-Z][A-Z0-9_]{2,63}$, got "lower"'],
    'logged with the error')
  t.throws(() => new RealtimeError('AB', 'too short'), TypeError)
  await c.close()
})

t.test('a reply that fails its schema is answered INTERNAL and logged with the failing paths', async (t) => {
  const sink = logSink()
  const { url } = await start(t, {
    actions: {
      'profile.get': defineAction({
        payload: Type.Object({}),
        reply: Type.Object({ name: Type.String() }),
        handler: () => ({ name: 42 } as unknown as { name: string })
      }),
      'profile.bigint': defineAction({ payload: Type.Object({}), handler: () => ({ n: 1n }) })
    }
  }, sink.stream)
  const c = await connect(url)
  t.same(await c.request({ type: 'action', action: 'profile.get', payload: {}, id: 1 }), { type: 'error', code: 'INTERNAL', message: 'Internal error', id: 1 })
  const line = sink.lines.find((l) => l.msg.includes('fails its reply schema'))
  t.ok(line, 'a log line')
  t.same(line?.details, [{ path: '/name', message: 'must be string' }])
  t.equal(line?.action, 'profile.get')
  t.same(await c.request({ type: 'action', action: 'profile.bigint', payload: {}, id: 2 }), { type: 'error', code: 'INTERNAL', message: 'Internal error', id: 2 },
    'a value JSON cannot carry')
  await c.close()
})

t.test('TIMEOUT after handlerTimeout; the later result is dropped; later frames go on', async (t) => {
  const slow = gate<{ late: true }>()
  const { url } = await start(t, {
    handlerTimeout: 100,
    actions: {
      'slow.call': { payload: Type.Object({}), handler: () => slow.promise },
      'fast.call': { payload: Type.Object({}), handler: () => 'fast' }
    }
  })
  const c = await connect(url)
  c.send({ type: 'action', action: 'slow.call', payload: {}, id: 1 })
  c.send({ type: 'action', action: 'fast.call', payload: {}, id: 2 })
  t.same(await c.next(), { type: 'error', code: 'TIMEOUT', message: 'The handler of "slow.call" did not answer within 100 ms', id: 1 })
  t.same(await c.next(), { type: 'ack', id: 2, result: 'fast' }, 'the frame behind it ran after the TIMEOUT')
  slow.open({ late: true })
  t.same(await c.request({ type: 'action', action: 'fast.call', payload: {}, id: 3 }), { type: 'ack', id: 3, result: 'fast' })
  t.same(c.frames, [], 'no ack for the timed-out call')
  await c.close()
})

t.test('channel-less calls: handled actions only; relay without channel is BAD_REQUEST naming /channel', async (t) => {
  const seen: Array<string | undefined> = []
  const { url } = await start(t, {
    actions: {
      'chat.message': Message,
      'rooms.list': { payload: Type.Object({}), handler: ({ channel }: { channel: string | undefined }) => { seen.push(channel); return ['lobby'] } }
    }
  })
  const c = await connect(url)
  t.same(await c.request({ type: 'action', action: 'rooms.list', payload: {}, id: 1 }), { type: 'ack', id: 1, result: ['lobby'] })
  t.same(seen, [undefined])
  t.same(await c.request({ type: 'action', action: 'chat.message', payload: { text: 'x' }, id: 2 }),
    { type: 'error', code: 'BAD_REQUEST', message: '"chat.message" is a relay action: it needs a channel', id: 2, details: [{ path: '/channel', message: 'required for relay actions' }] })
  t.same(await c.request({ type: 'action', action: 'rooms.list', payload: {}, exceptSelf: true, id: 3 }),
    { type: 'error', code: 'BAD_REQUEST', message: '"rooms.list" is a handled action: exceptSelf applies to relay actions only', id: 3, details: [{ path: '/exceptSelf', message: 'relay actions only' }] })
  t.same(await c.request({ type: 'action', action: 'nope', payload: {}, id: 4 }), { type: 'error', code: 'UNKNOWN_ACTION', message: 'Unknown action "nope"', id: 4 })
  await c.close()
})

t.test('frame order is kept behind a pending handler; another connection does not wait', async (t) => {
  const slow = gate()
  const order: string[] = []
  const { url } = await start(t, {
    actions: {
      'slow.call': { payload: Type.Object({}), handler: async () => { order.push('slow start'); await slow.promise; order.push('slow end'); return 'slow' } },
      'fast.call': { payload: Type.Object({}), handler: () => { order.push('fast'); return 'fast' } }
    }
  })
  const a = await connect(`${url}?deviceId=a`)
  const b = await connect(`${url}?deviceId=b`)
  a.send({ type: 'action', action: 'slow.call', payload: {}, id: 1 })
  a.send({ type: 'join', channel: 'room', id: 2 })
  a.send({ type: 'action', action: 'fast.call', payload: {}, id: 3 })
  t.same(await b.request({ type: 'action', action: 'fast.call', payload: {}, id: 1 }), { type: 'ack', id: 1, result: 'fast' },
    'another connection is answered while a handler of the first is pending')
  t.same(a.frames, [], 'nothing answered to the first connection yet')
  t.same(order, ['slow start', 'fast'])
  slow.open()
  t.same(await a.next(), { type: 'ack', id: 1, result: 'slow' })
  t.same(await a.next(), { type: 'joined', channel: 'room', id: 2 })
  t.same(await a.next(), { type: 'ack', id: 3, result: 'fast' })
  t.same(order, ['slow start', 'fast', 'slow end', 'fast'])
  await Promise.all([a.close(), b.close()])
})
