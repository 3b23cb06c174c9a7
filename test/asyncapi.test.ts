import t from 'tap'
import Fastify from 'fastify'
import { Parser } from '@asyncapi/parser'
import Type, { type TSchema } from 'typebox'
import { buildAsyncApi, type DescribedAction } from '../lib/asyncapi.js'
import { resolveAsyncApiOptions } from '../lib/asyncapi-options.js'
import { WireErrorCode } from '../lib/protocol.js'
import realtimePlugin from '../lib/index.js'

const Save = Type.Object({ text: Type.String({ maxLength: 4096 }), tags: Type.Optional(Type.Array(Type.String())) })
const Saved = Type.Object({ id: Type.String(), at: Type.Integer({ minimum: 0 }) })
const registry = new Map<string, DescribedAction>([
  ['chat.message', { payload: Type.Object({ text: Type.String({ maxLength: 4096 }) }) }],
  ['chat:save', { payload: Save, reply: Saved, handler: async () => ({ id: 'x', at: 0 }) }],
  ['rooms.list', { payload: Type.Object({}), handler: async () => [] }],
  ['pair', { payload: Type.Tuple([Type.String(), Type.Number()]) }],
  ['scores', { payload: Type.Record(Type.String(), Type.Number()) }],
  ['pick', { payload: Type.Union([Type.Literal('a'), Type.Literal('b')]) }]
])
const options = resolveAsyncApiOptions({
  info: { title: 'chat', version: '2.1.0' },
  servers: { local: { host: 'localhost:3000', protocol: 'ws' } }
})!
const parser = new Parser()

/** JSON form of a TypeBox schema: what the document must hold (TypeBox markers are non-enumerable). */
const plain = (schema: TSchema): unknown => JSON.parse(JSON.stringify(schema))
/** A schema as the parser returns it, without the `x-parser-*` keys it adds. */
function parsed (value: unknown): unknown {
  if (Array.isArray(value)) return value.map(parsed)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(Object.entries(value).filter(([key]) => !key.startsWith('x-parser-')).map(([key, v]) => [key, parsed(v)]))
}
/** A parsed message's payload schema as JSON. */
const payloadOf = (message: { payload: () => { json: () => unknown } | undefined }): any => parsed(message.payload()!.json())

t.test('the document parses valid with @asyncapi/parser: no error diagnostics', async (t) => {
  const doc = buildAsyncApi(registry, { path: '/ws', options })
  const { document, diagnostics } = await parser.parse(JSON.stringify(doc))
  t.same(diagnostics.filter((d) => d.severity === 0).map((d) => d.message), [], 'no error')
  t.ok(document, 'the parser returned a document')
  t.equal(document!.version(), '3.0.0')
  t.equal(document!.info().title(), 'chat')
  t.equal(document!.info().version(), '2.1.0')
  t.same(document!.servers().all().map((s) => [s.id(), s.host(), s.protocol()]), [['local', 'localhost:3000', 'ws']])
  const channel = document!.channels().get('realtime')!
  t.equal(channel.address(), '/ws')
  const ws = channel.bindings().get('ws')!
  t.equal(ws.value().method, 'GET')
  t.match(ws.value().query, { type: 'object', properties: { deviceId: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } } })
  // 7 frames of the protocol, action.<name> and message.<name> per action, ack.<name> per handled action
  t.equal(document!.messages().length, 7 + 2 * registry.size + 2)
  // join, leave, welcome, then one receive and one send per action
  t.equal(document!.operations().length, 3 + 2 * registry.size)
})

t.test('one message per action each way; the payload schema deep-equals the registered one', async (t) => {
  const doc = buildAsyncApi(registry, { path: '/ws', options })
  const { document } = await parser.parse(JSON.stringify(doc))
  const messages = document!.channels().get('realtime')!.messages()
  for (const [name, definition] of registry) {
    const request = messages.get(`action.${name}`)
    const delivery = messages.get(`message.${name}`)
    t.ok(request, `action.${name}`)
    t.ok(delivery, `message.${name}`)
    t.same(payloadOf(request!).properties.payload, plain(definition.payload), `${name}: request payload`)
    t.same(payloadOf(request!).properties.action, { type: 'string', pattern: '^[A-Za-z0-9:_.\\-]{1,128}$', const: name })
    t.same(payloadOf(delivery!).properties.payload, plain(definition.payload), `${name}: delivery payload`)
    // and in the document as served
    t.same((doc.channels.realtime.messages[`action.${name}`] as any).payload.properties.payload, plain(definition.payload))
    t.equal(request!.correlationId()?.location(), '$message.payload#/id', 'the request id is the correlation id')
  }
  t.same((doc.channels.realtime.messages['action.chat.message'] as any).payload.required, ['type', 'channel', 'action', 'payload'],
    'a relay action names its channel')
  t.same((doc.channels.realtime.messages['action.rooms.list'] as any).payload.required, ['type', 'action', 'payload'],
    'a handled action may omit it')
})

t.test('operations: receive with replies (ack with the reply schema in result, or error); send for pushes', async (t) => {
  const doc = buildAsyncApi(registry, { path: '/ws', options })
  const { document } = await parser.parse(JSON.stringify(doc))
  const ops = document!.operations()
  const replies = (id: string): string[] => ops.get(id)!.reply()!.messages().all().map((m) => m.id())
  t.ok(ops.get('join')!.isReceive())
  t.same(replies('join'), ['joined', 'error'])
  t.same(replies('leave'), ['left', 'error'])
  t.ok(ops.get('welcome')!.isSend())
  t.same(replies('action.chat.message'), ['ack', 'error'], 'a relay action is acked without result')
  t.same(replies('action.chat:save'), ['ack.chat:save', 'error'])
  const ack = document!.channels().get('realtime')!.messages().get('ack.chat:save')!
  t.same(payloadOf(ack).properties.result, plain(Saved), 'the reply schema is the ack result')
  t.equal(ack.correlationId()?.location(), '$message.payload#/id')
  t.same((doc.channels.realtime.messages['ack.rooms.list'] as any).payload.properties.result, {},
    'a handled action without reply schema: any result')
  t.ok(ops.get('message.chat.message')!.isSend())
  t.same(ops.get('message.chat.message')!.messages().all().map((m) => m.id()), ['message.chat.message'])
})

t.test('the error frame lists every wire code; application codes only when an action is handled', async (t) => {
  const withHandlers = buildAsyncApi(registry, { path: '/ws', options })
  const code = (doc: typeof withHandlers): any => (doc.channels.realtime.messages.error as any).payload.properties.code
  t.same(code(withHandlers).anyOf[0].enum, Object.values(WireErrorCode))
  t.equal(code(withHandlers).anyOf[1].pattern, '^[A-Z][A-Z0-9_]{2,63}$')
  const relayOnly = buildAsyncApi(new Map([['a', { payload: Type.String() }]]), { path: '/live', options })
  t.same(code(relayOnly), { type: 'string', enum: Object.values(WireErrorCode) })
  t.equal(relayOnly.channels.realtime.address, '/live')
  const { diagnostics } = await parser.parse(JSON.stringify(relayOnly))
  t.same(diagnostics.filter((d) => d.severity === 0).map((d) => d.message), [])
})

t.test('extension frames (history/presence) become messages and operations, and parse valid', async (t) => {
  const doc = buildAsyncApi(registry, {
    path: '/ws',
    options,
    extensions: [{
      client: [{ name: 'history', summary: 'Read a channel\'s history.', payload: Type.Object({ type: Type.Literal('history'), channel: Type.String() }), replies: ['history.page'] }],
      server: [
        { name: 'history.page', summary: 'A page of history.', payload: Type.Object({ type: Type.Literal('history'), items: Type.Array(Type.Unknown()) }) },
        { name: 'presence.diff', summary: 'Members joined and left.', payload: Type.Object({ type: Type.Literal('presence') }), push: true }
      ]
    }]
  })
  const { document, diagnostics } = await parser.parse(JSON.stringify(doc))
  t.same(diagnostics.filter((d) => d.severity === 0).map((d) => d.message), [])
  t.same(document!.operations().get('history')!.reply()!.messages().all().map((m) => m.id()), ['history.page', 'error'])
  t.ok(document!.operations().get('presence.diff')!.isSend())
  t.notOk(document!.operations().get('history.page'), 'a reply-only frame has no send operation')
})

t.test('unsupported schemas fail with a coded error naming the action', async (t) => {
  const cases: Array<[string, DescribedAction, RegExp]> = [
    ['cyclic', { payload: Type.Cyclic({ Node: Type.Object({ next: Type.Optional(Type.Ref('Node')) }) }, 'Node') }, /references/],
    ['ref', { payload: Type.Object({ a: Type.Ref('X') }) }, /#\/properties\/a\/\$ref/],
    ['undefined', { payload: Type.Object({ a: Type.Undefined() }) }, /"undefined", a type with no JSON form/],
    ['bigint', { payload: Type.BigInt() }, /"bigint"/],
    ['function', { payload: Type.Function([], Type.String()) }, /"function"/],
    ['reply', { payload: Type.Object({}), reply: Type.Object({ at: Type.Symbol() }), handler: () => {} }, /reply schema/]
  ]
  const selfRef: any = { type: 'object', properties: {} }
  selfRef.properties.self = selfRef
  cases.push(['object cycle', { payload: selfRef }, /cycle/])
  cases.push(['default NaN', { payload: Type.Number({ default: Number.NaN }) }, /NaN/])
  cases.push(['default Date', { payload: Type.Object({}, { default: new Date(0) }) as TSchema }, /Date/])
  for (const [name, definition, message] of cases) {
    t.throws(() => buildAsyncApi(new Map([[`bad.${name}`, definition]]), { path: '/ws', options }), {
      code: 'FST_REALTIME_ASYNCAPI_UNSUPPORTED_SCHEMA',
      message: new RegExp(`action "bad\\.${name}".*${message.source}|${message.source}.*action "bad\\.${name}"`)
    }, name)
  }
})

t.test('property names "type" and "$ref" are names, not keywords; shared subschemas are not cycles', async (t) => {
  const shared = Type.String()
  const payload = Type.Object({ type: Type.Literal('x'), $ref: Type.Optional(shared), other: shared })
  const doc = buildAsyncApi(new Map([['names', { payload }]]), { path: '/ws', options })
  t.same((doc.channels.realtime.messages['action.names'] as any).payload.properties.payload, plain(payload))
})

t.test('asyncapi option validation', async (t) => {
  t.equal(resolveAsyncApiOptions(undefined), undefined)
  t.equal(resolveAsyncApiOptions(false), undefined)
  t.same(resolveAsyncApiOptions({}), {
    route: '/asyncapi.json', info: { title: 'fastify-realtime WebSocket API', version: '1.0.0' }, servers: undefined
  })
  t.equal(resolveAsyncApiOptions({ route: false })!.route, undefined)
  for (const bad of [
    'yes', { route: 'api' }, { route: 3 }, { info: 'x' }, { info: { title: '' } }, { info: { version: 1 } },
    { servers: [] }, { servers: { local: { host: 'http://x', protocol: 'ws' } } },
    { servers: { local: { host: 'x', protocol: 'http' } } }, { servers: { 'a b': { host: 'x', protocol: 'ws' } } },
    { servers: { local: { host: 'x', protocol: 'ws', pathname: 'api' } } }
  ]) {
    t.throws(() => resolveAsyncApiOptions(bad), { code: 'FST_REALTIME_INVALID_OPTION' }, JSON.stringify(bad))
  }
})

t.test('through the plugin: built at onReady, served hidden with inject, parses valid, same as app.realtime.asyncapi()', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const handled = {
    'chat.message': Type.Object({ text: Type.String({ maxLength: 4096 }) }),
    'chat.save': { payload: Save, reply: Saved, handler: async () => ({ id: 'm1', at: 1 }) },
    'rooms.list': { payload: Type.Object({}), handler: () => ['room:1'] }
  }
  await app.register(realtimePlugin, {
    path: '/live',
    actions: handled,
    heartbeatInterval: 0,
    asyncapi: { info: { title: 'chat', version: '3.0.1' }, servers: { local: { host: 'localhost:3000', protocol: 'ws' } } }
  })
  const res = await app.inject('/asyncapi.json')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const served = res.json()
  t.same(served, app.realtime.asyncapi(), 'the decorator returns the served document')
  t.equal(app.realtime.asyncapi(), app.realtime.asyncapi(), 'built once')
  t.equal(served.channels.realtime.address, '/live')
  const { document, diagnostics } = await parser.parse(res.body)
  t.same(diagnostics.filter((d) => d.severity === 0).map((d) => d.message), [])
  const messages = document!.channels().get('realtime')!.messages()
  t.same(payloadOf(messages.get('action.chat.message')!).properties.payload, plain(handled['chat.message']))
  t.same(payloadOf(messages.get('ack.chat.save')!).properties.result, plain(Saved), 'the reply schema on the ack')
  t.ok(messages.get('ack.rooms.list'), 'every handled action has its ack')
  t.notOk(messages.get('ack.chat.message'), 'a relay action is acked without result')
})

t.test('asyncapi off: no route, but app.realtime.asyncapi() builds the document on demand', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtimePlugin, { actions: { 'chat.message': Type.Object({ text: Type.String() }) }, heartbeatInterval: 0 })
  await app.ready()
  t.equal((await app.inject('/asyncapi.json')).statusCode, 404)
  const doc = app.realtime.asyncapi()
  t.equal(doc.info.title, 'fastify-realtime WebSocket API')
  t.ok(doc.channels.realtime.messages['action.chat.message'])
})

t.test('asyncapi route: a custom path, or false for none', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(realtimePlugin, { heartbeatInterval: 0, asyncapi: { route: '/docs/ws.json' } })
  t.equal((await app.inject('/docs/ws.json')).statusCode, 200)
  const none = Fastify()
  t.teardown(() => none.close())
  await none.register(realtimePlugin, { heartbeatInterval: 0, asyncapi: { route: false } })
  t.equal((await none.inject('/asyncapi.json')).statusCode, 404)
  t.equal(none.realtime.asyncapi().asyncapi, '3.0.0')
})

t.test('an unsupported schema fails ready() with the coded error naming the action', async (t) => {
  for (const [name, payload] of [
    ['tree.node', Type.Cyclic({ Node: Type.Object({ next: Type.Optional(Type.Ref('Node')) }) }, 'Node')],
    ['ref.user', Type.Object({ user: Type.Ref('User') })]
  ] as const) {
    const app = Fastify()
    await app.register(realtimePlugin, { actions: { [name]: payload }, heartbeatInterval: 0, asyncapi: true })
    await t.rejects(async () => { await app.ready() }, { code: 'FST_REALTIME_ASYNCAPI_UNSUPPORTED_SCHEMA', message: new RegExp(`action "${name.replace('.', '\\.')}".*references`) })
    await app.close()
  }
})
