/**
 * Recovery and presence in the client SDK (protocol v1.2) on real sockets: a re-join after a reconnect sends the
 * position held and reports `recovered` (true with exactly the missed messages, in order; false with none), a join
 * of a channel joined already carries the position, and against a scripted peer: duplicates dropped, `reset` and
 * presence frames turned into events and state.
 */
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws'
import type { FastifyInstance } from 'fastify'
import {
  createClient, type ClientOptions, type JoinResult, type OpenDetail, type PresenceDetail, type RealtimeClient, type ResetDetail
} from '../lib/client/index.js'
import { actions, startServer } from './helpers/server.js'
import { nextEvent } from './helpers/client-sdk.js'
import { serverSockets } from './helpers/wait.js'

type Client = RealtimeClient<typeof actions>

async function open (url: string, options: ClientOptions = {}): Promise<Client> {
  const client = createClient<typeof actions>(url, { minDelay: 5, maxDelay: 20, ...options })
  await nextEvent<OpenDetail>(client, 'open')
  return client
}

/** Records `chat.message` deliveries of `channel` as [offset, text]; `count(n)` resolves once n arrived. */
function inbox (client: Client, channel: string): { got: Array<[number | undefined, string]>, count: (n: number) => Promise<void> } {
  const got: Array<[number | undefined, string]> = []
  let waiting: { n: number, resolve: () => void } | undefined
  client.on(channel, 'chat.message', (payload, meta) => {
    got.push([meta.offset, payload.text])
    if (waiting !== undefined && got.length >= waiting.n) waiting.resolve()
  })
  return {
    got,
    count: (n) => got.length >= n ? Promise.resolve() : new Promise((resolve) => { waiting = { n, resolve } })
  }
}

/** Closes the server side of every connection of `app` abruptly (a dropped network, as the client sees it). */
function dropAll (app: FastifyInstance): void {
  for (const socket of serverSockets(app)) socket.terminate()
}

const publish = async (app: FastifyInstance, channel: string, from: number, to: number): Promise<void> => {
  for (let i = from; i <= to; i++) await app.realtime.publish(channel, 'chat.message', { text: `m${i}` })
}

t.test('a reconnect re-joins with since: recovered, every missed message once, in order, then live', async (t) => {
  const server = await startServer({ history: { size: 100, ttl: 60_000 } })
  t.teardown(() => server.app.close())
  // A long backoff: the test reconnects the client itself, once the messages it misses were published.
  const client = await open(server.url, { deviceId: 'r1', minDelay: 60_000, maxDelay: 60_000 })
  t.teardown(() => client.close())
  const box = inbox(client, 'feed')
  const joined = await client.join('feed')
  t.match(joined, { channel: 'feed', offset: 0 })
  t.type(joined.epoch, 'string')
  t.notOk('recovered' in joined, 'a first join reports no recovery')
  await publish(server.app, 'feed', 1, 3)
  await box.count(3)
  t.same(client.position('feed'), { offset: 3, epoch: joined.epoch })

  const closed = nextEvent(client, 'close')
  dropAll(server.app)
  await closed
  await publish(server.app, 'feed', 4, 7) // missed while disconnected
  const rejoined = nextEvent<JoinResult>(client, 'rejoined')
  client.reconnect()
  t.same(await rejoined, { channel: 'feed', epoch: joined.epoch, offset: 7, recovered: true })
  await box.count(7)
  await publish(server.app, 'feed', 8, 8)
  await box.count(8)
  t.same(box.got, Array.from({ length: 8 }, (_, i) => [i + 1, `m${i + 1}`]), 'every message once, in order, with its offset')
  t.same(client.position('feed'), { offset: 8, epoch: joined.epoch })

  // Joining again while joined: the position, and continuity held.
  t.same(await client.join('feed'), { channel: 'feed', epoch: joined.epoch, offset: 8, recovered: true })
  await client.leave('feed')
  t.equal(client.position('feed'), undefined, 'leaving forgets the position')
})

t.test('messages trimmed meanwhile: recovered false, nothing replayed, live after; no history: as before', async (t) => {
  const server = await startServer({ history: (channel) => channel === 'plain' ? false : { size: 2, ttl: 60_000 } })
  t.teardown(() => server.app.close())
  const client = await open(server.url, { deviceId: 'r2', minDelay: 60_000, maxDelay: 60_000 })
  t.teardown(() => client.close())
  const box = inbox(client, 'feed')
  const plain = inbox(client, 'plain')
  const joined = await client.join('feed')
  t.same(await client.join('plain'), { channel: 'plain' }, 'a channel without history: no position')
  await publish(server.app, 'feed', 1, 1)
  await box.count(1)

  const closed = nextEvent(client, 'close')
  dropAll(server.app)
  await closed
  await publish(server.app, 'feed', 2, 5) // 4 missed, 2 kept: not recoverable
  const events: JoinResult[] = []
  const both = new Promise<void>((resolve) => {
    client.addEventListener('rejoined', (e) => { if (events.push(e.detail) === 2) resolve() })
  })
  client.reconnect()
  await both
  await publish(server.app, 'feed', 6, 6)
  await server.app.realtime.publish('plain', 'chat.message', { text: 'p1' })
  await box.count(2)
  await plain.count(1)
  t.same(events.sort((a, b) => a.channel.localeCompare(b.channel)), [
    { channel: 'feed', epoch: joined.epoch, offset: 5, recovered: false },
    { channel: 'plain' }
  ], 'one rejoined event per channel; recovered only where there is history')
  t.same(box.got, [[1, 'm1'], [6, 'm6']], 'no partial replay')
  t.same(plain.got, [[undefined, 'p1']])
})

/** A scripted peer: welcomes, answers joins with `joined` (+ `extra` fields), then runs `script` on the socket. */
async function scriptedPeer (t: Test, onJoin: (socket: ServerSocket, frame: any) => void): Promise<string> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await once(wss, 'listening')
  t.teardown(() => new Promise((resolve) => {
    for (const socket of wss.clients) socket.terminate()
    wss.close(resolve)
  }))
  wss.on('connection', (socket) => {
    socket.send(JSON.stringify({ type: 'welcome', deviceId: 'p1' }))
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString())
      if (frame.type === 'join') onJoin(socket, frame)
    })
  })
  return `ws://127.0.0.1:${(wss.address() as { port: number }).port}/ws`
}

t.test('against a scripted peer: seen offsets dropped, reset and presence frames become events and state', async (t) => {
  const joins: any[] = []
  const url = await scriptedPeer(t, (socket, frame) => {
    joins.push(frame)
    const send = (f: unknown): void => socket.send(JSON.stringify(f))
    send({ type: 'joined', channel: 'c', id: frame.id, epoch: 'e1', offset: 2 })
    send({ type: 'presence', channel: 'c', members: [{ deviceId: 'p1' }, { deviceId: 'x', info: { name: 'X' } }] })
    const message = (offset: number): unknown => ({ type: 'message', channel: 'c', action: 'chat.message', payload: { text: `m${offset}` }, from: 'x', offset })
    for (const offset of [3, 4, 4, 2, 5]) send(message(offset))
    send({ type: 'presence_diff', channel: 'c', joins: [{ deviceId: 'y' }, { deviceId: 'x' }], leaves: [{ deviceId: 'ghost' }] })
    send({ type: 'presence_diff', channel: 'c', joins: [], leaves: [{ deviceId: 'x' }] })
    send({ type: 'reset', channel: 'c', epoch: 'e2', offset: 10 })
    for (const offset of [10, 11]) send(message(offset))
  })
  const client = await open(url)
  t.teardown(() => client.close())
  const box = inbox(client, 'c')
  const presence: PresenceDetail[] = []
  client.addEventListener('presence', (e) => presence.push(e.detail))
  const reset = nextEvent<ResetDetail>(client, 'reset')
  t.same(await client.join('c'), { channel: 'c', epoch: 'e1', offset: 2 })
  t.same(await reset, { channel: 'c', epoch: 'e2', offset: 10 })
  await box.count(4)
  t.same(box.got, [[3, 'm3'], [4, 'm4'], [5, 'm5'], [11, 'm11']], 'offsets at or below the position are dropped')
  t.same(client.position('c'), { offset: 11, epoch: 'e2' })
  t.same(presence, [
    { channel: 'c', members: [{ deviceId: 'p1' }, { deviceId: 'x', info: { name: 'X' } }], joins: [{ deviceId: 'p1' }, { deviceId: 'x', info: { name: 'X' } }], leaves: [], snapshot: true },
    { channel: 'c', members: [{ deviceId: 'p1' }, { deviceId: 'x', info: { name: 'X' } }, { deviceId: 'y' }], joins: [{ deviceId: 'y' }], leaves: [], snapshot: false },
    { channel: 'c', members: [{ deviceId: 'p1' }, { deviceId: 'y' }], joins: [], leaves: [{ deviceId: 'x', info: { name: 'X' } }], snapshot: false }
  ], 'a join of a present member and a leave of an absent one change nothing')
  t.same(client.presence('c'), [{ deviceId: 'p1' }, { deviceId: 'y' }])
  t.same(joins, [{ type: 'join', channel: 'c', id: 1 }], 'a first join sends no since')
})
