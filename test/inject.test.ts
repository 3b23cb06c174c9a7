/**
 * "Testing your application" (README): a complete tap test of a handled action through `app.injectWS`, no
 * network. Kept identical to the README's example, apart from the import path.
 */
import { once } from 'node:events'
import t from 'tap'
import Fastify from 'fastify'
import Type from 'typebox'
import type WebSocket from 'ws'
import realtimePlugin, { defineAction } from '../lib/index.js'

const messages: Array<{ id: string, text: string }> = []

function buildApp () {
  const app = Fastify()
  app.register(realtimePlugin, {
    heartbeatInterval: 0, // injected sockets do not answer pings: no heartbeat during tests
    actions: {
      'chat.message': Type.Object({ id: Type.String(), text: Type.String() }),
      'chat.send': defineAction({
        payload: Type.Object({ text: Type.String({ minLength: 1 }) }),
        reply: Type.Object({ id: Type.String() }),
        async handler ({ channel, payload }) {
          const stored = { id: `m${messages.length + 1}`, text: payload.text }
          messages.push(stored)
          await app.realtime.publish(channel!, 'chat.message', stored)
          return { id: stored.id }
        }
      })
    }
  })
  return app
}

/** Connects through injectWS and returns a function awaiting the next server frame. */
async function injected (app: ReturnType<typeof buildApp>, path: string): Promise<{ ws: WebSocket, next: () => Promise<any> }> {
  const frames: any[] = []
  const waiting: Array<(frame: any) => void> = []
  const ws = await app.injectWS(path, {}, {
    // Listen in onInit: the welcome frame may arrive before injectWS resolves.
    onInit (ws) {
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString())
        const waiter = waiting.shift()
        if (waiter === undefined) frames.push(frame)
        else waiter(frame)
      })
    }
  })
  const next = (): Promise<any> => frames.length > 0 ? Promise.resolve(frames.shift()) : new Promise((resolve) => waiting.push(resolve))
  return { ws, next }
}

t.test('chat.send stores the message, publishes it and replies with its id', async (t) => {
  const app = buildApp()
  t.teardown(() => app.close())
  await app.ready()

  const alice = await injected(app, '/ws?deviceId=alice')
  const bob = await injected(app, '/ws?deviceId=bob')
  t.same(await alice.next(), { type: 'welcome', deviceId: 'alice' })
  t.same(await bob.next(), { type: 'welcome', deviceId: 'bob' })

  bob.ws.send(JSON.stringify({ type: 'join', channel: 'lobby', id: 1 }))
  t.same(await bob.next(), { type: 'joined', channel: 'lobby', id: 1 })
  alice.ws.send(JSON.stringify({ type: 'join', channel: 'lobby', id: 1 }))
  t.same(await alice.next(), { type: 'joined', channel: 'lobby', id: 1 })

  alice.ws.send(JSON.stringify({ type: 'action', channel: 'lobby', action: 'chat.send', payload: { text: 'hi' }, id: 2 }))
  t.same(await alice.next(), { type: 'message', channel: 'lobby', action: 'chat.message', payload: { id: 'm1', text: 'hi' }, from: null })
  t.same(await alice.next(), { type: 'ack', id: 2, result: { id: 'm1' } })
  t.same(await bob.next(), { type: 'message', channel: 'lobby', action: 'chat.message', payload: { id: 'm1', text: 'hi' }, from: null })
  t.same(messages, [{ id: 'm1', text: 'hi' }])

  alice.ws.send(JSON.stringify({ type: 'action', channel: 'lobby', action: 'chat.send', payload: { text: '' }, id: 3 }))
  t.match(await alice.next(), { type: 'error', code: 'VALIDATION_FAILED', id: 3 })

  const closed = once(bob.ws, 'close')
  bob.ws.close()
  await closed
  alice.ws.terminate()
})

t.test('an injected upgrade refused before the 101 rejects with its status', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtimePlugin, { heartbeatInterval: 0, authenticate: () => { throw new Error('no token') } })
  await app.ready()
  await t.rejects(app.injectWS('/ws'), /401/)
})
