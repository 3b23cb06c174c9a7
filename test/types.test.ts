/**
 * Static types of the public API. `tsc --noEmit` (run by `npm test`) checks this file: each `@ts-expect-error`
 * fails the type check if the line below it compiles, so a wrong payload that compiles is a failing test.
 */
import t from 'tap'
import Fastify from 'fastify'
import Type, { type Static } from 'typebox'
import realtimePlugin, {
  type ActionPayload, type ActionReply, type RealtimeAdapter, type RealtimeConnection, type RealtimePluginOptions,
  RealtimeError, defineAction, memoryAdapter, realtimeOptions
} from '../lib/index.js'
import { compileActions } from '../lib/actions.js'

const typeActions = {
  'types.point': Type.Object({ x: Type.Number(), y: Type.Number() })
}

declare module '../lib/index.js' {
  interface RealtimeActions { 'types.point': typeof typeActions['types.point'] }
}

t.test('publish and sendToDevice are typed by the registered actions', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const options: RealtimePluginOptions<typeof typeActions> = { actions: typeActions, adapter: memoryAdapter() }
  await app.register(realtimePlugin, options)
  await app.ready()

  const point: Static<typeof typeActions['types.point']> = { x: 1, y: 2 }
  await app.realtime.publish('room', 'types.point', point)
  await app.realtime.sendToDevice('dev', 'types.point', { x: 0, y: 0 })
  // @ts-expect-error: wrong payload type
  await t.rejects(app.realtime.publish('room', 'types.point', { x: 'one', y: 2 }), { code: 'FST_REALTIME_VALIDATION_FAILED' })
  // @ts-expect-error: missing property
  await t.rejects(app.realtime.sendToDevice('dev', 'types.point', { x: 1 }), { code: 'FST_REALTIME_VALIDATION_FAILED' })
  // @ts-expect-error: unknown action name
  await t.rejects(app.realtime.publish('room', 'types.unknown', {}), { code: 'FST_REALTIME_UNKNOWN_ACTION' })
  const adapter: RealtimeAdapter = app.realtime.adapter
  t.type(adapter.publish, 'function')
})

const payloadSchema = Type.Object({ text: Type.String() })
const replySchema = Type.Object({ id: Type.String(), at: Type.Integer() })
const handledActions = {
  'chat.send': defineAction({
    payload: payloadSchema,
    reply: replySchema,
    handler: ({ payload, channel }) => {
      const text: string = payload.text
      // @ts-expect-error: the payload has no such field
      use(payload.nope)
      // @ts-expect-error: channel may be undefined (a channel-less call)
      const c: string = channel
      use(c)
      return { id: text, at: 1 }
    }
  }),
  // @ts-expect-error: the handler's resolved value must match the reply schema ({ id: number } is not { id: string })
  'chat.bad': defineAction({ payload: payloadSchema, reply: replySchema, handler: async () => ({ id: 1, at: 1 }) }),
  'chat.relay': payloadSchema
}

/** Marks values as used. */
function use (..._values: unknown[]): void {}

t.test('one action map types the handler payload, the reply and the relay', async (t) => {
  type Send = ActionReply<typeof handledActions, 'chat.send'>
  const reply: Send = { id: 'x', at: 1 }
  // @ts-expect-error: the reply type comes from the reply schema
  const wrong: Send = { id: 1, at: 1 }
  const relay: ActionReply<typeof handledActions, 'chat.relay'> = undefined
  // @ts-expect-error: a relay action has no result
  const relayWrong: ActionReply<typeof handledActions, 'chat.relay'> = { id: 'x' }
  const payload: ActionPayload<typeof handledActions, 'chat.send'> = { text: 'x' }
  // @ts-expect-error: the payload type of the object form is its payload schema
  const payloadWrong: ActionPayload<typeof handledActions, 'chat.send'> = { id: 'x' }
  use(wrong, relayWrong, payloadWrong)
  const registry = compileActions(handledActions)
  t.same(reply, { id: 'x', at: 1 })
  t.equal(relay, undefined)
  t.same(payload, { text: 'x' })
  t.ok(registry.get('chat.send')!.handler)
})

t.test('connection.auth is typed from authenticate in every hook and authorize callback', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const roles: string[] = []
  await app.register(realtimePlugin, realtimeOptions({
    actions: { ...handledActions, ...typeActions },
    authenticate: async () => ({ deviceId: 'dev', role: 'admin' as 'admin' | 'member' }),
    authorizeJoin: (connection, channel) => connection.auth.role === 'admin' || !channel.startsWith('admin:'),
    authorizePublish: (connection) => connection.auth.role !== 'member',
    onConnect: (connection) => { roles.push(connection.auth.role) },
    onJoin: (connection) => {
      // @ts-expect-error: not a field of what authenticate returns
      use(connection.auth.userId)
    },
    // @ts-expect-error: the role is a union of two literals
    onLeave: (connection) => { const r: 'owner' = connection.auth.role; use(r) },
    onDisconnect: (connection, { code, reason }) => { use(connection.auth.role, code, reason) }
  }))
  await app.ready()
  t.same(roles, [])
  // publish's options and the new decorator members
  await app.realtime.publish('room', 'types.point', { x: 1, y: 2 }, { except: 'dev' })
  // @ts-expect-error: except is a deviceId string
  await t.rejects(app.realtime.publish('room', 'types.point', { x: 1, y: 2 }, { except: 1 }), { code: 'FST_REALTIME_INVALID_DEVICE_ID' })
  await app.realtime.join('dev', 'room')
  await app.realtime.disconnect('dev', { code: 4001, reason: 'bye' })
  const connections: RealtimeConnection[] = [...app.realtime.connections()]
  t.same(connections, [])
  t.type(new RealtimeError('ROOM_FULL', 'full', { max: 2 }).details, 'object')
})
