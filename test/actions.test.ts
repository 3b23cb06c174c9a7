/**
 * The action registry: schemas are checked at register time (issue 8 item 3: a Zod/Joi schema or an invalid JSON
 * Schema must not silently validate nothing), plain JSON Schema objects validate on the wire.
 */
import t from 'tap'
import Fastify from 'fastify'
import Type from 'typebox'
import realtimePlugin, { memoryAdapter } from '../lib/index.js'
import { compileActions } from '../lib/actions.js'
import { connect } from './helpers/client.js'
import { startServer } from './helpers/server.js'

/** Shaped like a Zod object schema: data under `_def`, methods as functions. */
const zodLike = { _def: { typeName: 'ZodObject', shape: () => ({}) }, parse () {}, safeParse () {} }
/** Shaped like a Joi schema: a class instance. */
class JoiLike { type = 'object'; validate (): void {} }

const refused: Array<[string, unknown]> = [
  ['a Zod-shaped schema', { 'chat.message': zodLike }],
  ['a Joi-shaped class instance', { 'chat.message': new JoiLike() }],
  ['a schema with a misspelt type', { 'chat.message': { type: 'strin' } }],
  ['a schema with a negative minLength', { 'chat.message': Type.Object({ text: { type: 'string', minLength: -1 } as any }) }],
  ['a Zod-shaped payload in the object form', { 'chat.message': { payload: zodLike } }],
  ['an invalid reply schema', { 'chat.message': { payload: Type.Object({}), reply: { type: 'strin' }, handler: () => 1 } }],
  ['a Zod-shaped reply schema', { 'chat.message': { payload: Type.Object({}), reply: zodLike, handler: () => 1 } }],
  ['a handler that is not a function', { 'chat.message': { payload: Type.Object({}), handler: 'save' } }],
  ['an unknown key in the object form', { 'chat.message': { payload: Type.Object({}), replay: Type.String() } }],
  ['a boolean schema', { 'chat.message': true }]
]

for (const [name, actions] of refused) {
  t.test(`register refuses ${name}, naming the action`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await t.rejects(async () => { await app.register(realtimePlugin, { actions: actions as any, adapter: memoryAdapter() }) },
      { code: 'FST_REALTIME_INVALID_OPTION', message: /actions\["chat\.message"\]/ })
  })
}

t.test('TypeBox schemas of every kind and the object form compile into the registry', async (t) => {
  const payload = Type.Object({ text: Type.String() })
  const reply = Type.Object({ id: Type.String() })
  const handler = (): { id: string } => ({ id: '1' })
  const registry = compileActions({
    relay: payload,
    relayObject: { payload },
    handled: { payload, reply, handler },
    tuple: Type.Tuple([Type.String(), Type.Number()]),
    cyclic: Type.Cyclic({ Node: Type.Object({ nodes: Type.Array(Type.Ref('Node')) }) }, 'Node'),
    refined: Type.Refine(Type.String(), (s) => s.length > 1),
    json: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }
  })
  t.same([...registry.keys()], ['relay', 'relayObject', 'handled', 'tuple', 'cyclic', 'refined', 'json'])
  const handled = registry.get('handled')!
  t.equal(handled.name, 'handled')
  t.equal(handled.payload, payload)
  t.equal(handled.reply, reply)
  t.equal(handled.handler, handler)
  t.ok(handled.validateReply!.Check({ id: 'x' }))
  t.notOk(handled.validateReply!.Check({ id: 1 }))
  t.equal(registry.get('relayObject')!.handler, undefined)
  t.equal(registry.get('relay')!.validateReply, undefined)
  t.notOk(registry.get('refined')!.validate.Check('a'), 'a TypeBox refinement still applies')
})

t.test('a plain JSON Schema object validates client payloads', async (t) => {
  const { app, url } = await startServer({
    actions: { 'count.set': { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'], additionalProperties: false } as any }
  })
  t.teardown(() => app.close())
  const c = await connect(url)
  await c.join('room')
  const bad = await c.request({ type: 'action', channel: 'room', action: 'count.set', payload: { nope: true }, id: 1 })
  t.equal(bad.code, 'VALIDATION_FAILED')
  const good = await c.request({ type: 'action', channel: 'room', action: 'count.set', payload: { n: 3 }, id: 2 })
  t.equal(good.type, 'ack')
  await c.close()
})
