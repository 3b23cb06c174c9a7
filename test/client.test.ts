/**
 * Integration tests of fastify-realtime/client (lib/client) against a real server on a loopback port, in Node
 * (which has no global WebSocket in Node 20, so the client loads `ws`).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import type { WebSocket as ServerSocket } from 'ws'
import realtimePlugin, { memoryAdapter, type RealtimeAdapter, type RealtimePluginOptions } from '../lib/index.js'
import {
  backoffDelay, createClient, isTerminalCloseCode, RealtimeError, type ClientOptions, type CloseDetail, type OpenDetail,
  type RealtimeClient, type ReconnectingDetail
} from '../lib/client/index.js'
import { actions, startServer } from './helpers/server.js'
import { nextEvent, rejection } from './helpers/client-sdk.js'

type Client = RealtimeClient<typeof actions>
const fast: ClientOptions = { minDelay: 5, maxDelay: 20 }

/** Records the server side of every connection, by deviceId, in connection order. */
function track (app: FastifyInstance): { sockets: (deviceId: string) => ServerSocket[], next: (deviceId: string) => Promise<ServerSocket> } {
  const byDevice = new Map<string, ServerSocket[]>()
  const waiters = new Map<string, Array<(s: ServerSocket) => void>>()
  app.websocketServer.on('connection', (socket: ServerSocket, req: { url?: string }) => {
    const deviceId = new URL(req.url ?? '/', 'http://x').searchParams.get('deviceId') ?? ''
    byDevice.set(deviceId, [...(byDevice.get(deviceId) ?? []), socket])
    for (const resolve of waiters.get(deviceId)?.splice(0) ?? []) resolve(socket)
  })
  return {
    sockets: (deviceId) => byDevice.get(deviceId) ?? [],
    next: (deviceId) => new Promise((resolve) => {
      waiters.set(deviceId, [...(waiters.get(deviceId) ?? []), resolve])
    })
  }
}

async function open (url: string, options: ClientOptions = {}): Promise<Client> {
  const client = createClient<typeof actions>(url, { ...fast, ...options })
  await nextEvent<OpenDetail>(client, 'open')
  return client
}

/** Collects deliveries of `chat.message` on `channel`; `until(text)` resolves once `text` arrived. */
function inbox (client: Client, channel: string): { texts: string[], from: Array<string | null>, until: (text: string) => Promise<void> } {
  const texts: string[] = []
  const from: Array<string | null> = []
  const waiting = new Map<string, () => void>()
  client.on(channel, 'chat.message', (payload, meta) => {
    texts.push(payload.text)
    from.push(meta.from)
    waiting.get(payload.text)?.()
  })
  return {
    texts,
    from,
    until: (text) => texts.includes(text) ? Promise.resolve() : new Promise((resolve) => waiting.set(text, resolve))
  }
}

/** A deferred promise. */
function deferred<T = void> (): { promise: Promise<T>, resolve: (v: T) => void } {
  let resolve!: (v: T) => void
  const promise = new Promise<T>((_resolve) => { resolve = _resolve })
  return { promise, resolve }
}

/** The memory adapter, with publishes to channel `broken` failing and to channel `slow` held until released. */
function faultyAdapter (): { adapter: RealtimeAdapter, held: Promise<() => void> } {
  const inner = memoryAdapter()
  const held = deferred<() => void>()
  const adapter: RealtimeAdapter = {
    ...inner,
    publish (topic, message) {
      if (topic === 'channel:broken') return Promise.reject(new Error('backend down'))
      if (topic === 'channel:slow') {
        const release = deferred()
        held.resolve(release.resolve)
        return release.promise.then(() => inner.publish(topic, message))
      }
      return inner.publish(topic, message)
    }
  }
  return { adapter, held: held.promise }
}

async function listenOn (port: number, options: RealtimePluginOptions<any> = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'silent' } })
  await app.register(realtimePlugin, { actions, ...options })
  await app.listen({ port, host: '127.0.0.1' })
  return app
}

t.test('options are validated when the client is created', async (t) => {
  const url = 'ws://127.0.0.1:1/ws'
  t.throws(() => createClient(url, { deviceId: 'bad id!' }), TypeError)
  t.throws(() => createClient(url, { minDelay: 100, maxDelay: 50 }), TypeError)
  t.throws(() => createClient(url, { requestTimeout: 0 }), TypeError)
  t.throws(() => createClient(url, { queueSize: -1 }), TypeError)
  t.throws(() => createClient('ftp://127.0.0.1/ws'), TypeError)
  t.throws(() => createClient('not a url'), TypeError)
  t.throws(() => createClient(url, { isTerminalClose: 4000 as any }), TypeError)
})

t.test('isTerminalCloseCode: 1003, 1008, 1009 and the application range 4000-4999', async (t) => {
  t.same([1003, 1008, 1009, 4000, 4001, 4999].filter(isTerminalCloseCode), [1003, 1008, 1009, 4000, 4001, 4999])
  t.same([1000, 1001, 1006, 1011, 1013, 3000, 3999, 5000].filter(isTerminalCloseCode), [])
})

t.test('backoffDelay: full jitter in [minDelay, min(maxDelay, minDelay * 2^attempt)]', async (t) => {
  t.equal(backoffDelay(1, 500, 30_000, () => 0), 500)
  t.equal(backoffDelay(1, 500, 30_000, () => 0.999999), 1000)
  t.equal(backoffDelay(3, 500, 30_000, () => 0.999999), 4000)
  t.equal(backoffDelay(20, 500, 30_000, () => 0.999999), 30_000)
  t.equal(backoffDelay(1000, 500, 30_000, () => 0.5), 15_250)
  for (let attempt = 1; attempt < 12; attempt++) {
    const d = backoffDelay(attempt, 500, 30_000)
    t.ok(Number.isInteger(d) && d >= 500 && d <= Math.min(30_000, 500 * 2 ** attempt), `attempt ${attempt}: ${d}`)
  }
})

t.test('connects at once, keeps the deviceId the server assigned across reconnects', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const server = track(app)
  const client = createClient<typeof actions>(url, fast)
  t.teardown(() => client.close())
  t.equal(client.state, 'connecting')
  t.equal(client.deviceId, undefined)
  const first = await nextEvent<OpenDetail>(client, 'open')
  t.match(first.deviceId, /^[A-Za-z0-9_-]{1,64}$/)
  t.equal(first.reconnected, false)
  t.equal(client.deviceId, first.deviceId)
  t.equal(client.state, 'open')

  server.sockets('')[0]!.terminate()
  const closed = await nextEvent<CloseDetail>(client, 'close')
  t.equal(closed.code, 1006)
  t.equal(closed.willReconnect, true)
  t.equal(client.state, 'reconnecting')
  const again = await nextEvent<OpenDetail>(client, 'open')
  t.same(again, { deviceId: first.deviceId, reconnected: true })
  t.equal(server.sockets(first.deviceId).length, 1, 'the reconnect asked for the assigned deviceId')
})

t.test('join, publish, on and leave resolve on joined / ack / left, with typed deliveries', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const alice = createClient<typeof actions>(url, { ...fast, deviceId: 'alice' })
  t.teardown(() => alice.close())
  // Called before the first open: queued, then sent once welcomed.
  const joined = alice.join('lobby')
  const box = inbox(alice, 'lobby')
  await joined
  t.same([...alice.channels], ['lobby'])
  const bob = await open(url, { deviceId: 'bob' })
  t.teardown(() => bob.close())
  await bob.join('lobby')
  const bobBox = inbox(bob, 'lobby')
  const moves: Array<{ x: number, y: number, channel: string, action: string }> = []
  const firstMove = deferred()
  const stopMoves = bob.on('lobby', 'cursor.move', (payload, meta) => {
    moves.push({ ...payload, channel: meta.channel, action: meta.action })
    firstMove.resolve()
  })

  t.equal(await alice.publish('lobby', 'chat.message', { text: 'hello' }), undefined)
  await bobBox.until('hello')
  t.same(bobBox.from, ['alice'])
  await box.until('hello')
  await alice.publish('lobby', 'cursor.move', { x: 1, y: 2 })
  await firstMove.promise
  stopMoves()
  await alice.publish('lobby', 'cursor.move', { x: 3, y: 4 })
  await alice.publish('lobby', 'chat.message', { text: 'after' })
  await bobBox.until('after')
  t.same(moves, [{ x: 1, y: 2, channel: 'lobby', action: 'cursor.move' }], 'the unsubscribed handler got nothing more')

  await app.realtime.publish('lobby', 'chat.message', { text: 'from server' })
  await bobBox.until('from server')
  t.equal(bobBox.from.at(-1), null)

  await bob.leave('lobby')
  t.same([...bob.channels], [])
  await alice.publish('lobby', 'chat.message', { text: 'bye' })
  await box.until('bye')
  t.notOk(bobBox.texts.includes('bye'), 'no delivery after leave')
})

t.test('publish with exceptSelf sends "exceptSelf": true in the action frame, and only then', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const server = track(app)
  const client = await open(url, { deviceId: 'self' })
  t.teardown(() => client.close())
  await client.join('lobby')
  const received: unknown[] = []
  server.sockets('self')[0]!.on('message', (data) => received.push(JSON.parse(String(data))))
  const settled = (p: Promise<unknown>): Promise<unknown> => p.then(() => 'ack', (err: RealtimeError) => err.code)
  await settled(client.publish('lobby', 'chat.message', { text: 'not to me' }, { exceptSelf: true }))
  await settled(client.publish('lobby', 'chat.message', { text: 'plain' }, { exceptSelf: false }))
  await settled(client.publish('lobby', 'chat.message', { text: 'plain too' }))
  t.match(received, [
    { type: 'action', channel: 'lobby', action: 'chat.message', payload: { text: 'not to me' }, exceptSelf: true },
    { type: 'action', channel: 'lobby', action: 'chat.message', payload: { text: 'plain' } },
    { type: 'action', channel: 'lobby', action: 'chat.message', payload: { text: 'plain too' } }
  ])
  t.same(received.map((frame) => Object.hasOwn(frame as object, 'exceptSelf')), [true, false, false])
})

t.test('direct messages reach onDirect handlers', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const client = await open(url, { deviceId: 'dm-1' })
  t.teardown(() => client.close())
  const got = deferred<{ payload: { text: string }, meta: { channel: undefined, action: string, from: string | null } }>()
  client.onDirect('chat.message', (payload, meta) => got.resolve({ payload, meta }))
  await app.realtime.sendToDevice('dm-1', 'chat.message', { text: 'psst' })
  t.same(await got.promise, { payload: { text: 'psst' }, meta: { channel: undefined, action: 'chat.message', from: null } })
})

t.test('error replies reject with the protocol code', async (t) => {
  const { adapter } = faultyAdapter()
  const { app, url } = await startServer({
    adapter,
    maxChannelsPerConnection: 3,
    authorizeJoin: (_connection, channel) => channel !== 'secret'
  })
  t.teardown(() => app.close())
  const client = await open(url)
  t.teardown(() => client.close())
  await client.join('lobby')
  await client.join('broken')

  const invalid = await rejection(client.publish('lobby', 'chat.message', { text: 42 } as any))
  t.equal(invalid.code, 'VALIDATION_FAILED')
  t.match(invalid.details, [{ path: '/payload/text' }])
  t.equal((await rejection(client.publish('lobby', 'nope' as any, {}))).code, 'UNKNOWN_ACTION')
  t.equal((await rejection(client.publish('elsewhere', 'chat.message', { text: 'x' }))).code, 'NOT_JOINED')
  t.equal((await rejection(client.join('secret'))).code, 'FORBIDDEN')
  t.equal((await rejection(client.join('bad channel!'))).code, 'BAD_REQUEST')
  const unavailable = await rejection(client.publish('broken', 'chat.message', { text: 'x' }))
  t.equal(unavailable.code, 'UNAVAILABLE')
  t.ok(unavailable instanceof Error && unavailable.name === 'RealtimeError')
  await client.join('third')
  t.equal((await rejection(client.join('fourth'))).code, 'LIMIT_EXCEEDED')
  t.same([...client.channels].sort(), ['broken', 'lobby', 'third'])
})

t.test('requests time out after requestTimeout, sent or still queued', async (t) => {
  const never = deferred<boolean>()
  const { app, url } = await startServer({ authorizeJoin: () => never.promise })
  t.teardown(() => app.close())
  t.teardown(() => never.resolve(false))
  const client = await open(url, { requestTimeout: 50 })
  t.teardown(() => client.close())
  const started = Date.now()
  const err = await rejection(client.join('lobby'))
  t.equal(err.code, 'TIMEOUT')
  t.ok(Date.now() - started >= 45, 'not before the timeout')

  // Nothing listens on a closed port: the call waits in the queue, times out there and is never sent.
  const probe = Fastify()
  await probe.listen({ port: 0, host: '127.0.0.1' })
  const { port } = probe.server.address() as { port: number }
  await probe.close()
  const offline = createClient<typeof actions>(`ws://127.0.0.1:${port}/ws`, { ...fast, requestTimeout: 30 })
  t.teardown(() => offline.close())
  t.equal((await rejection(offline.publish('lobby', 'chat.message', { text: 'x' }))).code, 'TIMEOUT')
  t.not(offline.state, 'open')
})

t.test('an attempt that gets no welcome within connectTimeout is abandoned and retried', async (t) => {
  // A TCP server that accepts connections and never answers the upgrade.
  const silent = createServer((socket) => { socket.on('error', () => {}) })
  const accepted: Socket[] = []
  silent.on('connection', (socket) => accepted.push(socket))
  silent.listen(0, '127.0.0.1')
  await once(silent, 'listening')
  t.teardown(() => {
    for (const socket of accepted) socket.destroy()
    silent.close()
  })
  const { port } = silent.address() as { port: number }
  const client = createClient<typeof actions>(`ws://127.0.0.1:${port}/ws`, { ...fast, connectTimeout: 40 })
  t.teardown(() => client.close())
  const started = Date.now()
  const closed = await nextEvent<CloseDetail>(client, 'close')
  t.ok(Date.now() - started >= 35, 'not before connectTimeout')
  t.same(closed, { code: 1006, reason: 'no welcome within 40 ms', willReconnect: true })
  t.equal((await nextEvent<ReconnectingDetail>(client, 'reconnecting')).attempt, 2)
  t.ok(accepted.length >= 2, 'it tried again')
})

t.test('calls beyond queueSize reject with QUEUE_FULL; queueSize 0 rejects at once', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const none = createClient<typeof actions>(url, { ...fast, queueSize: 0 })
  t.teardown(() => none.close())
  t.equal((await rejection(none.join('lobby'))).code, 'QUEUE_FULL')
  await nextEvent(none, 'open')
  await none.join('lobby')

  const two = createClient<typeof actions>(url, { ...fast, queueSize: 2 })
  t.teardown(() => two.close())
  const first = two.join('lobby')
  const second = two.publish('lobby', 'chat.message', { text: 'queued' })
  t.equal((await rejection(two.publish('lobby', 'chat.message', { text: 'third' }))).code, 'QUEUE_FULL')
  await first
  await second
})

t.test('after the server drops the connection: re-joins, then sends each queued publish exactly once', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const server = track(app)
  const observer = await open(url, { deviceId: 'observer' })
  t.teardown(() => observer.close())
  await observer.join('room')
  const seen = inbox(observer, 'room')
  const client = await open(url, { deviceId: 'dropped' })
  t.teardown(() => client.close())
  await client.join('room')
  await client.join('other')
  const own = inbox(client, 'room')

  const queued: Array<Promise<void>> = []
  client.addEventListener('close', (event) => {
    t.equal(event.detail.willReconnect, true)
    t.equal(client.state, 'reconnecting')
    for (const text of ['q1', 'q2', 'q3']) queued.push(client.publish('room', 'chat.message', { text }))
  }, { once: true })
  const reconnecting = nextEvent<ReconnectingDetail>(client, 'reconnecting')
  server.sockets('dropped')[0]!.terminate()
  const { attempt, delay } = await reconnecting
  t.equal(attempt, 1)
  t.ok(delay >= 5 && delay <= 10, `delay ${delay} within [minDelay, 2 * minDelay]`)
  t.same(await nextEvent<OpenDetail>(client, 'open'), { deviceId: 'dropped', reconnected: true })
  await Promise.all(queued)
  t.equal(server.sockets('dropped').length, 2)

  await observer.publish('room', 'chat.message', { text: 'sentinel' })
  await seen.until('sentinel')
  t.same(seen.texts, ['q1', 'q2', 'q3', 'sentinel'], 'each queued publish delivered once, in order')
  await own.until('sentinel')
  t.same(own.texts, ['q1', 'q2', 'q3', 'sentinel'], 're-joined "room" before the queued publishes')
  t.same([...client.channels].sort(), ['other', 'room'])
  const other = inbox(client, 'other')
  await app.realtime.publish('other', 'chat.message', { text: 'other again' })
  await other.until('other again')
})

t.test('a join in flight when the connection drops is sent again once; a publish in flight rejects DISCONNECTED', async (t) => {
  const { adapter, held } = faultyAdapter()
  let asked = 0
  const firstAsk = deferred()
  const { app, url } = await startServer({
    adapter,
    authorizeJoin: (_connection, channel) => {
      if (channel !== 'gated') return true
      asked++
      if (asked === 1) {
        firstAsk.resolve()
        return new Promise<boolean>(() => {}) // the first connection never gets its answer
      }
      return true
    }
  })
  t.teardown(() => app.close())
  const server = track(app)
  const client = await open(url, { deviceId: 'inflight' })
  t.teardown(() => client.close())
  await client.join('slow')
  const publishing = client.publish('slow', 'chat.message', { text: 'maybe' })
  const release = await held
  const joining = client.join('gated')
  await firstAsk.promise
  server.sockets('inflight')[0]!.terminate()
  const err = await rejection(publishing)
  t.equal(err.code, 'DISCONNECTED')
  release()
  await joining
  t.equal(asked, 2, 'the join was sent once more, on the new connection')
  t.same([...client.channels].sort(), ['gated', 'slow'])
})

t.test('close codes 1008 and 1003 end the client: no retry, calls reject CLOSED', async (t) => {
  for (const code of [1008, 1003]) {
    const { app, url } = await startServer()
    const server = track(app)
    const client = await open(url, { deviceId: 'ended', minDelay: 5, maxDelay: 5 })
    // A control client reconnecting later than the ended one would: once it is back, a retry would have shown.
    const control = await open(url, { deviceId: 'control', minDelay: 100, maxDelay: 100 })
    await client.join('lobby')
    const closed = nextEvent<CloseDetail>(client, 'close')
    server.sockets('ended')[0]!.close(code, 'go away')
    server.sockets('control')[0]!.terminate()
    t.same(await closed, { code, reason: 'go away', willReconnect: false }, `${code} is terminal`)
    t.equal(client.state, 'closed')
    t.equal((await rejection(client.publish('lobby', 'chat.message', { text: 'x' }))).code, 'CLOSED')
    await nextEvent(control, 'open')
    t.equal(server.sockets('ended').length, 1, `no reconnect after ${code}`)
    await control.close()
    await app.close()
  }
})

t.test('application close codes 4000 and 4999 (a kick) end the client by default', async (t) => {
  for (const code of [4000, 4999]) {
    const { app, url } = await startServer()
    const server = track(app)
    const client = await open(url, { deviceId: 'kicked', minDelay: 5, maxDelay: 5 })
    const control = await open(url, { deviceId: 'control', minDelay: 100, maxDelay: 100 })
    await client.join('lobby')
    const closed = nextEvent<CloseDetail>(client, 'close')
    server.sockets('kicked')[0]!.close(code, 'kicked')
    server.sockets('control')[0]!.terminate()
    t.same(await closed, { code, reason: 'kicked', willReconnect: false }, `${code} is terminal`)
    t.equal(client.state, 'closed')
    const err = await rejection(client.join('lobby'))
    t.equal(err.code, 'CLOSED')
    await nextEvent(control, 'open')
    t.equal(server.sockets('kicked').length, 1, `no reconnect after ${code}`)
    t.equal(await client.close(), undefined, 'close() after a terminal close resolves at once')
    await control.close()
    await app.close()
  }
})

t.test('isTerminalClose decides which closes are final', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const server = track(app)
  const client = await open(url, {
    deviceId: 'custom',
    isTerminalClose: (code, reason) => (code !== 4001 && isTerminalCloseCode(code)) || reason === 'final'
  })
  t.teardown(() => client.close())
  let closed = nextEvent<CloseDetail>(client, 'close')
  server.sockets('custom')[0]!.close(4001, 'come back later')
  t.same(await closed, { code: 4001, reason: 'come back later', willReconnect: true }, '4001 retried')
  t.same(await nextEvent<OpenDetail>(client, 'open'), { deviceId: 'custom', reconnected: true })
  closed = nextEvent<CloseDetail>(client, 'close')
  server.sockets('custom')[1]!.close(1011, 'final')
  t.same(await closed, { code: 1011, reason: 'final', willReconnect: false }, 'the reason is given too')
  t.equal(client.state, 'closed')

  // A throwing predicate is reported, and the default decides.
  const thrower = await open(url, { deviceId: 'thrower', isTerminalClose: () => { throw new Error('oops') } })
  t.teardown(() => thrower.close())
  const error = nextEvent<RealtimeError>(thrower, 'error')
  closed = nextEvent<CloseDetail>(thrower, 'close')
  server.sockets('thrower')[0]!.close(4000, 'kicked')
  t.match(await error, { code: 'HANDLER_FAILED', cause: { message: 'oops' } })
  t.match(await closed, { code: 4000, willReconnect: false })
})

t.test('reconnect() connects at once while waiting out the backoff; no-op while open; throws once closed', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const server = track(app)
  // A 10-minute backoff: within this test only reconnect() can bring the client back.
  const client = await open(url, { deviceId: 'eager', minDelay: 600_000, maxDelay: 600_000 })
  t.teardown(() => client.close())
  await client.join('lobby')
  const box = inbox(client, 'lobby')

  client.reconnect()
  await client.publish('lobby', 'chat.message', { text: 'still here' })
  await box.until('still here')
  t.equal(server.sockets('eager').length, 1, 'no new connection while open')

  const reconnecting = nextEvent<ReconnectingDetail>(client, 'reconnecting')
  server.sockets('eager')[0]!.terminate()
  t.same(await reconnecting, { attempt: 1, delay: 600_000 })
  const reopened = nextEvent<OpenDetail>(client, 'open')
  client.reconnect()
  t.equal(client.state, 'connecting')
  t.same(await reopened, { deviceId: 'eager', reconnected: true })
  await client.publish('lobby', 'chat.message', { text: 'back' })
  await box.until('back')
  t.equal(server.sockets('eager').length, 2)

  // Called from a close listener: the scheduled attempt is replaced, no reconnecting event follows.
  const events: string[] = []
  for (const type of ['close', 'reconnecting', 'open']) client.addEventListener(type, () => events.push(type))
  client.addEventListener('close', () => client.reconnect(), { once: true })
  const again = nextEvent<OpenDetail>(client, 'open')
  server.sockets('eager')[1]!.terminate()
  await again
  t.same(events, ['close', 'open'])

  await client.close()
  const err = (() => { try { client.reconnect() } catch (err) { return err } })()
  t.ok(err instanceof RealtimeError && err.code === 'CLOSED', 'reconnect() after close() throws CLOSED')
})

t.test('close codes 1011 and 1013 are retried', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const server = track(app)
  const client = await open(url, { deviceId: 'retried' })
  t.teardown(() => client.close())
  for (const [i, code] of [1011, 1013].entries()) {
    const closed = nextEvent<CloseDetail>(client, 'close')
    server.sockets('retried')[i]!.close(code, 'later')
    t.same(await closed, { code, reason: 'later', willReconnect: true })
    t.same(await nextEvent<OpenDetail>(client, 'open'), { deviceId: 'retried', reconnected: true })
  }
  t.equal(server.sockets('retried').length, 3)
})

t.test('a frame over maxPayload gets 1009, which ends the client', async (t) => {
  const { app, url } = await startServer({ maxPayload: 1024 })
  t.teardown(() => app.close())
  const client = await open(url)
  await client.join('lobby')
  const closed = nextEvent<CloseDetail>(client, 'close')
  const err = await rejection(client.publish('lobby', 'chat.message', { text: 'x'.repeat(2000) }))
  t.equal(err.code, 'DISCONNECTED')
  t.match(await closed, { code: 1009, willReconnect: false })
  t.equal(client.state, 'closed')
})

t.test('HTTP 401 / 403 to the upgrade end the client in Node', async (t) => {
  const { app, url } = await startServer({
    authenticate: (request) => {
      const deviceId = (request.query as { deviceId?: string }).deviceId
      if (deviceId === 'banned') throw Object.assign(new Error('banned'), { statusCode: 403 })
      if (deviceId !== 'friend') throw new Error('who are you')
      return { deviceId }
    }
  })
  t.teardown(() => app.close())
  for (const [deviceId, status] of [['banned', 403], ['stranger', 401]] as const) {
    const client = createClient<typeof actions>(url, { ...fast, deviceId })
    const pending = client.join('lobby')
    const error = nextEvent<RealtimeError>(client, 'error')
    const closed = nextEvent<CloseDetail>(client, 'close')
    t.match(await error, { code: 'CONNECTION_FAILED', status })
    t.same(await closed, { code: 1006, reason: `HTTP ${status}`, willReconnect: false })
    t.equal(client.state, 'closed')
    t.equal((await rejection(pending)).code, 'CLOSED', 'the queued call is rejected')
  }
  const friend = await open(url, { deviceId: 'friend' })
  await friend.join('lobby')
  await friend.close()
})

t.test('close() sends 1000, rejects pending calls with CLOSED and stops reconnecting', async (t) => {
  const never = deferred<boolean>()
  const { app, url } = await startServer({ authorizeJoin: () => never.promise })
  t.teardown(() => app.close())
  t.teardown(() => never.resolve(false))
  const server = track(app)
  const client = await open(url, { deviceId: 'closer' })
  const serverClosed = once(server.sockets('closer')[0]!, 'close')
  const pending = client.join('lobby')
  const closeEvent = nextEvent<CloseDetail>(client, 'close')
  const closing = client.close()
  t.equal(client.state, 'closed')
  t.equal((await rejection(pending)).code, 'CLOSED')
  await closing
  const [code] = await serverClosed as [number, Buffer]
  t.equal(code, 1000, 'the server saw close code 1000')
  t.match(await closeEvent, { code: 1000, willReconnect: false })
  t.equal(client.close(), client.close(), 'idempotent')
  t.equal((await rejection(client.join('lobby'))).code, 'CLOSED')
  t.equal(server.sockets('closer').length, 1)
})

t.test('close() while waiting to reconnect cancels the retry', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const server = track(app)
  const client = await open(url, { deviceId: 'waiting', minDelay: 60_000, maxDelay: 60_000 })
  const reconnecting = nextEvent<ReconnectingDetail>(client, 'reconnecting')
  server.sockets('waiting')[0]!.terminate()
  t.equal((await reconnecting).delay, 60_000)
  const queued = client.publish('lobby', 'chat.message', { text: 'never sent' })
  const final = nextEvent<CloseDetail>(client, 'close')
  await client.close()
  t.same(await final, { code: 1000, reason: 'client closed', willReconnect: false })
  t.equal((await rejection(queued)).code, 'CLOSED')
})

t.test('server restart on the same port (1001): reconnects with its deviceId and re-joins', async (t) => {
  let app = await listenOn(0)
  const { port } = app.server.address() as { port: number }
  t.teardown(() => app.close())
  const url = `ws://127.0.0.1:${port}/ws`
  const client = await open(url, { deviceId: 'survivor' })
  t.teardown(() => client.close())
  await client.join('lobby')
  const closed = nextEvent<CloseDetail>(client, 'close')
  await app.close()
  t.match(await closed, { code: 1001, willReconnect: true })
  const reopened = nextEvent<OpenDetail>(client, 'open')
  app = await listenOn(port)
  t.same(await reopened, { deviceId: 'survivor', reconnected: true })
  const box = inbox(client, 'lobby')
  await client.publish('lobby', 'chat.message', { text: 'back' })
  await box.until('back')
  t.same(box.from, ['survivor'])
})

t.test('a throwing handler is reported as an error event and does not stop other handlers', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const client = await open(url)
  t.teardown(() => client.close())
  await client.join('lobby')
  client.on('lobby', 'chat.message', () => { throw new Error('boom') })
  const box = inbox(client, 'lobby')
  const error = nextEvent<RealtimeError>(client, 'error')
  await client.publish('lobby', 'chat.message', { text: 'x' })
  const err = await error
  t.equal(err.code, 'HANDLER_FAILED')
  t.match(err.cause, { message: 'boom' })
  await box.until('x')
})

t.test('examples/client.ts joins lobby, publishes every interval with the typed client, and Ctrl-C closes with 1000', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const server = track(app)
  const observer = await open(url, { deviceId: 'observer' })
  t.teardown(() => observer.close())
  await observer.join('lobby')
  const box = inbox(observer, 'lobby')
  const connected = server.next('example-1')
  const example = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../examples/client.ts', import.meta.url)),
    '--url', url, '--device', 'example-1', '--interval', '20'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const reap = (): void => { example.kill('SIGKILL') }
  process.once('exit', reap)
  t.teardown(() => { process.off('exit', reap); example.kill('SIGKILL') })
  let output = ''
  example.stdout.setEncoding('utf8').on('data', (chunk: string) => { output += chunk })
  const exited = once(example, 'exit')
  const socket = await connected
  const serverClosed = once(socket, 'close')
  await box.until('message 2')
  t.same(box.from.slice(0, 2), ['example-1', 'example-1'])
  example.kill('SIGINT')
  const [code] = await serverClosed as [number]
  t.equal(code, 1000, 'the server saw close code 1000')
  t.same(await exited, [0, null], 'exit code 0')
  t.match(output, /^connected as example-1\njoined lobby\n/)
  t.match(output, /\[lobby\] example-1: message 1\n/)
  t.match(output, /closed 1000/)
})
