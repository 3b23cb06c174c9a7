/**
 * The client against the application API of issue 9 (protocol v1.1), on a real server over loopback: handled
 * actions (`publish` resolving with `ack.result`, channel-less `rpc`, application error codes), server-driven
 * membership (unsolicited `joined` / `left`, `joined` / `left` events, re-join after a reconnect), `authenticate`'s
 * `channels`, `exceptSelf`, and kicks (`app.realtime.disconnect`, close code 4000-4999).
 */
import t from 'tap'
import Type from 'typebox'
import type { FastifyInstance } from 'fastify'
import type { WebSocket as ServerSocket } from 'ws'
import { defineAction, redisAdapter, RealtimeError as ServerError } from '../lib/index.js'
import {
  createClient, RealtimeError, type ClientOptions, type CloseDetail, type MembershipDetail, type OpenDetail,
  type RealtimeClient
} from '../lib/client/index.js'
import { startRedis } from './helpers/redis.js'
import { actions, startServer } from './helpers/server.js'
import { nextEvent, rejection } from './helpers/client-sdk.js'

const Text = Type.Object({ text: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false })

/** The test app: the relay actions of helpers/server.ts plus handled ones; `app` is set once the server runs. */
function appActions (holder: { app?: FastifyInstance }) {
  return {
    ...actions,
    'chat.send': defineAction({
      payload: Text,
      reply: Type.Object({ id: Type.String(), channel: Type.String() }),
      handler: async ({ connection, channel, payload }) => {
        if (payload.text === 'full') throw new ServerError('ROOM_FULL', 'The room is full', { max: 2 })
        if (payload.text === 'boom') throw new Error('secret database password')
        await holder.app!.realtime.publish(channel!, 'chat.message', { text: `stored: ${payload.text}` })
        return { id: `${connection.deviceId}-1`, channel: channel! }
      }
    }),
    'rooms.list': defineAction({
      payload: Type.Object({}),
      reply: Type.Array(Type.String()),
      handler: () => ['lobby', 'support']
    }),
    'rooms.stuck': defineAction({
      payload: Type.Object({}),
      handler: () => new Promise<never>(() => {}) // never settles: the server answers TIMEOUT
    })
  }
}
type AppActions = ReturnType<typeof appActions>
type Client = RealtimeClient<AppActions>
const fast: ClientOptions = { minDelay: 5, maxDelay: 20 }

async function open (url: string, options: ClientOptions = {}): Promise<Client> {
  const client = createClient<AppActions>(url, { ...fast, ...options })
  await nextEvent<OpenDetail>(client, 'open')
  return client
}

/** Collects `chat.message` deliveries on `channel`; `until(text)` resolves once `text` arrived. */
function inbox (client: Client, channel: string): { texts: string[], until: (text: string) => Promise<void> } {
  const texts: string[] = []
  const waiting = new Map<string, () => void>()
  client.on(channel, 'chat.message', (payload) => {
    texts.push(payload.text)
    waiting.get(payload.text)?.()
  })
  return {
    texts,
    until: (text) => texts.includes(text) ? Promise.resolve() : new Promise((resolve) => waiting.set(text, resolve))
  }
}

/** Every `joined` / `left` event of `client`, in order. */
function membership (client: Client): Array<{ type: string } & MembershipDetail> {
  const events: Array<{ type: string } & MembershipDetail> = []
  for (const type of ['joined', 'left'] as const) {
    client.addEventListener(type, (event) => events.push({ type, ...event.detail }))
  }
  return events
}

/** The server side of every connection by deviceId, in connection order. */
function track (app: FastifyInstance): (deviceId: string) => ServerSocket[] {
  const byDevice = new Map<string, ServerSocket[]>()
  app.websocketServer.on('connection', (socket: ServerSocket, req: { url?: string }) => {
    const deviceId = new URL(req.url ?? '/', 'http://x').searchParams.get('deviceId') ?? ''
    byDevice.set(deviceId, [...(byDevice.get(deviceId) ?? []), socket])
  })
  return (deviceId) => byDevice.get(deviceId) ?? []
}

t.test('publish resolves with the handler result, rpc calls a channel-less handled action, app codes arrive unchanged', async (t) => {
  const holder: { app?: FastifyInstance } = {}
  const { app, url } = await startServer({ actions: appActions(holder), handlerTimeout: 50 })
  holder.app = app
  t.teardown(() => app.close())
  const alice = await open(url, { deviceId: 'alice' })
  t.teardown(() => alice.close())
  const bob = await open(url, { deviceId: 'bob' })
  t.teardown(() => bob.close())
  await alice.join('lobby')
  await bob.join('lobby')
  const box = inbox(bob, 'lobby')
  const handledDeliveries: unknown[] = []
  bob.on('lobby', 'chat.send', (payload) => handledDeliveries.push(payload))

  t.same(await alice.publish('lobby', 'chat.send', { text: 'hi' }), { id: 'alice-1', channel: 'lobby' })
  await box.until('stored: hi')
  t.equal(await alice.publish('lobby', 'chat.message', { text: 'relay' }), undefined, 'a relay resolves undefined')
  await box.until('relay')
  t.same(box.texts, ['stored: hi', 'relay'])
  t.same(handledDeliveries, [], 'the handled action itself was not fanned out')

  t.same(await alice.rpc('rooms.list', {}), ['lobby', 'support'])
  const stuck = await rejection(alice.rpc('rooms.stuck', {}))
  t.equal(stuck.code, 'TIMEOUT', "the server's handlerTimeout (50 ms), well before the client's requestTimeout")
  t.match(stuck.message, /handler/i)

  const full = await rejection(alice.publish('lobby', 'chat.send', { text: 'full' }))
  t.match(full, { code: 'ROOM_FULL', message: 'The room is full', details: { max: 2 } })
  const internal = await rejection(alice.publish('lobby', 'chat.send', { text: 'boom' }))
  t.equal(internal.code, 'INTERNAL')
  t.notMatch(internal.message, /secret/)
  t.equal((await rejection(alice.publish('lobby', 'chat.send', { text: '' }))).code, 'VALIDATION_FAILED')
  t.equal((await rejection(alice.publish('elsewhere', 'chat.send', { text: 'x' }))).code, 'NOT_JOINED')
  const relayRpc = await rejection(alice.rpc('chat.message' as 'rooms.list', { text: 'x' } as any))
  t.equal(relayRpc.code, 'BAD_REQUEST', 'a relay action needs a channel')
  t.match(relayRpc.details, [{ path: '/channel' }])
})

t.test('unsolicited joined / left update channels and fire events; a server-joined channel is re-joined after a reconnect', async (t) => {
  const asked: string[] = []
  const { app, url } = await startServer({
    authorizeJoin: (_connection, channel) => {
      asked.push(channel)
      return true
    }
  })
  t.teardown(() => app.close())
  const sockets = track(app)
  const client = await open(url, { deviceId: 'member' })
  t.teardown(() => client.close())
  const events = membership(client)
  const box = inbox(client, 'support')

  const joined = nextEvent<MembershipDetail>(client, 'joined')
  await app.realtime.join('member', 'support')
  t.same(await joined, { channel: 'support', byServer: true })
  t.same([...client.channels], ['support'])
  await app.realtime.publish('support', 'chat.message', { text: 'welcome' })
  await box.until('welcome')
  t.same(asked, [], 'the server join did not ask authorizeJoin')

  // After a reconnect the client re-joins it like any channel: through authorizeJoin.
  sockets('member')[0]!.terminate()
  t.same(await nextEvent<OpenDetail>(client, 'open'), { deviceId: 'member', reconnected: true })
  await client.publish('support', 'chat.message', { text: 'back' }) // sent behind the re-join
  await box.until('back')
  t.same(asked, ['support'], 're-joined through authorizeJoin')

  const left = nextEvent<MembershipDetail>(client, 'left')
  await app.realtime.leave('member', 'support')
  t.same(await left, { channel: 'support', byServer: true })
  t.same([...client.channels], [])

  // The client's own join and leave fire the events too, with byServer false.
  await client.join('lobby')
  await client.leave('lobby')
  t.same(events, [
    { type: 'joined', channel: 'support', byServer: true },
    { type: 'left', channel: 'support', byServer: true },
    { type: 'joined', channel: 'lobby', byServer: false },
    { type: 'left', channel: 'lobby', byServer: false }
  ], 'no event for the re-join: the channel never left channels')

  // Left by the server: not re-joined after the next reconnect.
  sockets('member')[1]!.terminate()
  await nextEvent<OpenDetail>(client, 'open')
  await client.join('probe')
  t.same(asked, ['support', 'lobby', 'probe'])
})

t.test('a re-join refused by authorizeJoin drops the channel with a left event (byServer) and an error', async (t) => {
  let allow = true
  const { app, url } = await startServer({ authorizeJoin: () => allow })
  t.teardown(() => app.close())
  const sockets = track(app)
  const client = await open(url, { deviceId: 'refused' })
  t.teardown(() => client.close())
  await app.realtime.join('refused', 'support')
  await client.join('lobby')
  allow = false
  const error = nextEvent<RealtimeError>(client, 'error')
  const left = nextEvent<MembershipDetail>(client, 'left')
  sockets('refused')[0]!.terminate()
  t.equal((await error).code, 'FORBIDDEN')
  t.same(await left, { channel: 'support', byServer: true })
})

t.test('authenticate channels are joined on connect and after a reconnect, even when authorizeJoin refuses them', async (t) => {
  const { app, url } = await startServer({
    authenticate: (request) => {
      const deviceId = (request.query as { deviceId?: string }).deviceId ?? 'anon'
      return { deviceId, channels: [`user:${deviceId}`] }
    },
    authorizeJoin: (_connection, channel) => !channel.startsWith('user:')
  })
  t.teardown(() => app.close())
  const sockets = track(app)
  const client = createClient<AppActions>(url, { ...fast, deviceId: 'u1' })
  t.teardown(() => client.close())
  const events = membership(client)
  const errors: string[] = []
  client.addEventListener('error', (event) => errors.push(event.detail.code))
  const joined = nextEvent<MembershipDetail>(client, 'joined')
  await nextEvent(client, 'open')
  t.same(await joined, { channel: 'user:u1', byServer: true })
  const box = inbox(client, 'user:u1')
  await app.realtime.publish('user:u1', 'chat.message', { text: 'one' })
  await box.until('one')

  sockets('u1')[0]!.terminate()
  await nextEvent(client, 'open')
  // The server joins it again by itself; the client's own re-join is refused by authorizeJoin and ignored.
  await client.join('lobby') // behind the re-join: its answer has arrived
  await app.realtime.publish('user:u1', 'chat.message', { text: 'two' })
  await box.until('two')
  t.ok(client.channels.has('user:u1'))
  t.same(events.filter((e) => e.channel === 'user:u1'), [{ type: 'joined', channel: 'user:u1', byServer: true }])
  t.same(errors, [])
})

t.test('exceptSelf: every connection of the sender\'s deviceId is skipped, every other member receives', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const tab1 = await open(url, { deviceId: 'me' })
  t.teardown(() => tab1.close())
  const tab2 = await open(url, { deviceId: 'me' })
  t.teardown(() => tab2.close())
  const other = await open(url, { deviceId: 'other' })
  t.teardown(() => other.close())
  const boxes = [tab1, tab2, other].map((client) => inbox(client, 'lobby'))
  for (const client of [tab1, tab2, other]) await client.join('lobby')

  t.equal(await tab1.publish('lobby', 'chat.message', { text: 'typing' }, { exceptSelf: true }), undefined)
  await boxes[2]!.until('typing')
  await other.publish('lobby', 'chat.message', { text: 'sentinel' })
  for (const box of boxes) await box.until('sentinel')
  t.same(boxes.map((box) => box.texts), [['sentinel'], ['sentinel'], ['typing', 'sentinel']])
})

t.test('a kick (app.realtime.disconnect, 4000) ends the client: no reconnect, calls reject CLOSED', async (t) => {
  const { app, url } = await startServer()
  t.teardown(() => app.close())
  const sockets = track(app)
  const client = await open(url, { deviceId: 'kicked', minDelay: 5, maxDelay: 5 })
  // Reconnects later than the kicked client would: once it is back, a retry would have shown.
  const control = await open(url, { deviceId: 'control', minDelay: 100, maxDelay: 100 })
  t.teardown(() => control.close())
  await client.join('lobby')
  const closed = nextEvent<CloseDetail>(client, 'close')
  await app.realtime.disconnect('kicked')
  t.match(await closed, { code: 4000, willReconnect: false })
  t.equal(client.state, 'closed')
  t.equal((await rejection(client.publish('lobby', 'chat.message', { text: 'x' }))).code, 'CLOSED')
  sockets('control')[0]!.terminate()
  await nextEvent(control, 'open')
  t.equal(sockets('kicked').length, 1, 'no reconnect after the kick')

  const again = await open(url, { deviceId: 'kicked2' })
  const closedAgain = nextEvent<CloseDetail>(again, 'close')
  await app.realtime.disconnect('kicked2', { code: 4003, reason: 'logged out' })
  t.same(await closedAgain, { code: 4003, reason: 'logged out', willReconnect: false })
})

t.test('two nodes on one Redis: join, leave and kick from node A reach the client on node B', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const a = await startServer({ adapter: redisAdapter({ url: redis.url }) })
  t.teardown(() => a.app.close())
  const b = await startServer({ adapter: redisAdapter({ url: redis.url }) })
  t.teardown(() => b.app.close())
  const client = await open(b.url, { deviceId: 'remote' })
  t.teardown(() => client.close())
  const box = inbox(client, 'support')

  const joined = nextEvent<MembershipDetail>(client, 'joined')
  await a.app.realtime.join('remote', 'support')
  t.same(await joined, { channel: 'support', byServer: true })
  await a.app.realtime.publish('support', 'chat.message', { text: 'from A' })
  await box.until('from A')

  const left = nextEvent<MembershipDetail>(client, 'left')
  await a.app.realtime.leave('remote', 'support')
  t.same(await left, { channel: 'support', byServer: true })
  t.same([...client.channels], [])

  const closed = nextEvent<CloseDetail>(client, 'close')
  await a.app.realtime.disconnect('remote', { reason: 'logged out' })
  t.same(await closed, { code: 4000, reason: 'logged out', willReconnect: false })
  t.equal(client.state, 'closed')
})
