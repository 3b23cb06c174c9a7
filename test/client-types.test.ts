/**
 * Type tests of fastify-realtime/client. The `typeChecks` function is never called: `tsc --noEmit` checks it
 * (each `@ts-expect-error` line must fail to compile, or tsc reports the directive as unused). At run time this
 * file type-checks itself with the TypeScript compiler API, so tap fails when a wrong payload starts compiling,
 * and proves on a snippet that a wrong payload is an error.
 */
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import t from 'tap'
import ts from 'typescript'
import Type, { type Static, type TSchema } from 'typebox'
import { defineAction } from '../lib/index.js'
import {
  createClient, RealtimeError, type ActionPayload, type ActionResult, type CloseDetail, type HandledActionName,
  type JoinResult, type MembershipDetail, type PresenceDetail, type RealtimeClient, type RealtimeErrorCode, type ResetDetail
} from '../lib/client/index.js'

export const actions = {
  'chat.message': Type.Object({ text: Type.String() }),
  'cursor.move': Type.Object({ x: Type.Number(), y: Type.Number() })
}

/** Both forms of action definitions (issue 9): relay schemas, relay objects, handled actions with and without reply. */
export const appActions = {
  'chat.message': Type.Object({ text: Type.String() }),
  'chat.typing': { payload: Type.Object({ on: Type.Boolean() }) },
  'chat.send': {
    payload: Type.Object({ text: Type.String() }),
    reply: Type.Object({ id: Type.String(), at: Type.Number() }),
    handler: async ({ payload }: { payload: { text: string } }) => ({ id: payload.text, at: 1 })
  },
  'rooms.list': {
    payload: Type.Object({}),
    reply: Type.Array(Type.String()),
    handler: () => ['lobby']
  },
  'audit.log': {
    payload: Type.Object({ n: Type.Number() }),
    handler: () => undefined
  },
  'profile.save': defineAction({
    payload: Type.Object({ name: Type.String() }),
    reply: Type.Object({ saved: Type.Boolean() }),
    handler: async ({ payload }) => ({ saved: payload.name !== '' })
  }),
  'profile.get': spec({
    payload: Type.Object({ userId: Type.String() }),
    reply: Type.Object({ name: Type.String() }),
    handler: () => ({ name: 'Ada' })
  })
}

/**
 * A definition helper shaped like the server's `defineAction`: it returns the spec type, whose `reply` and `handler`
 * are optional properties. The client must still see a handled action with a typed reply.
 */
function spec<P extends TSchema, R extends TSchema = TSchema> (s: { payload: P, reply?: R, handler?: (call: { payload: Static<P> }) => Static<R> | Promise<Static<R>> }): { payload: P, reply?: R, handler?: (call: { payload: Static<P> }) => Static<R> | Promise<Static<R>> } {
  return s
}

type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2) ? true : false
function expectType<T extends true> (_proof?: T): void {}
/** Marks values as used (keeps tsc's noUnusedLocals and the linter quiet). */
function use (..._values: unknown[]): void {}

export function typeChecks (client: RealtimeClient<typeof actions>): void {
  expectType<Equal<ActionPayload<typeof actions, 'chat.message'>, { text: string }>>()
  expectType<Equal<typeof client, ReturnType<typeof createClient<typeof actions>>>>()

  use(client.publish('lobby', 'chat.message', { text: 'hi' }))
  use(client.publish('lobby', 'cursor.move', { x: 1, y: 2 }))
  // @ts-expect-error: wrong type of a field
  use(client.publish('lobby', 'chat.message', { text: 1 }))
  // @ts-expect-error: a required field is missing
  use(client.publish('lobby', 'chat.message', {}))
  // @ts-expect-error: the payload of another action
  use(client.publish('lobby', 'chat.message', { x: 1, y: 2 }))
  // @ts-expect-error: an action the server does not register
  use(client.publish('lobby', 'chat.nope', { text: 'hi' }))
  // @ts-expect-error: the payload is required
  use(client.publish('lobby', 'chat.message'))
  const published: Promise<void> = client.publish('lobby', 'cursor.move', { x: 0, y: 0 })
  use(published)

  const off: () => void = client.on('lobby', 'cursor.move', (payload, meta) => {
    expectType<Equal<typeof payload, { x: number, y: number }>>()
    expectType<Equal<typeof meta.action, 'cursor.move'>>()
    expectType<Equal<typeof meta.channel, string>>()
    expectType<Equal<typeof meta.from, string | null>>()
    // @ts-expect-error: not a field of cursor.move
    use(payload.text)
  })
  off()
  // @ts-expect-error: a handler expecting another action's payload
  client.on('lobby', 'chat.message', (payload: { x: number }) => payload.x)
  // @ts-expect-error: an unknown action
  client.on('lobby', 'chat.nope', () => {})
  client.onDirect('chat.message', (payload, meta) => {
    expectType<Equal<typeof payload, { text: string }>>()
    expectType<Equal<typeof meta.channel, undefined>>()
  })

  const joined: Promise<JoinResult> = client.join('lobby')
  const left: Promise<void> = client.leave('lobby')
  use(joined, left)

  client.addEventListener('rejoined', (event) => {
    expectType<Equal<typeof event.detail, JoinResult>>()
    expectType<Equal<typeof event.detail.recovered, boolean | undefined>>()
  })
  client.addEventListener('reset', (event) => {
    expectType<Equal<typeof event.detail, ResetDetail>>()
  })
  client.addEventListener('presence', (event) => {
    expectType<Equal<typeof event.detail, PresenceDetail>>()
  })
  client.on('lobby', 'chat.message', (_payload, meta) => {
    expectType<Equal<typeof meta.offset, number | undefined>>()
  })

  client.addEventListener('close', (event) => {
    expectType<Equal<typeof event.detail, CloseDetail>>()
    const willReconnect: boolean = event.detail.willReconnect
    use(willReconnect)
    // @ts-expect-error: close has no attempt (reconnecting has)
    use(event.detail.attempt)
  })
  client.addEventListener('reconnecting', (event) => {
    const delay: number = event.detail.delay + event.detail.attempt
    use(delay)
  })
  client.addEventListener('open', (event) => {
    const deviceId: string = event.detail.deviceId
    use(deviceId)
  })
  client.addEventListener('error', (event) => {
    expectType<Equal<typeof event.detail, RealtimeError>>()
    const code: RealtimeErrorCode = event.detail.code
    use(code)
  })

  client.addEventListener('joined', (event) => {
    expectType<Equal<typeof event.detail, MembershipDetail>>()
    const byServer: boolean = event.detail.byServer
    use(byServer, event.detail.channel)
  })
  client.addEventListener('left', (event) => {
    const channel: string = event.detail.channel
    use(channel)
  })

  // publish options
  use(client.publish('lobby', 'chat.message', { text: 'typing' }, { exceptSelf: true }))
  // @ts-expect-error: exceptSelf is a boolean
  use(client.publish('lobby', 'chat.message', { text: 'typing' }, { exceptSelf: 'yes' }))
  // @ts-expect-error: no such publish option
  use(client.publish('lobby', 'chat.message', { text: 'typing' }, { except: 'me' }))

  // Error codes: the wire's, the client's, and an application's own (a server handler's RealtimeError).
  const appCode: RealtimeErrorCode = 'ROOM_FULL'
  const wireCode: RealtimeErrorCode = 'FORBIDDEN'
  const details: unknown = new RealtimeError('ROOM_FULL', 'full', { details: { max: 10 } }).details
  use(appCode, wireCode, details)

  // Without the action map: any action, unknown payloads and results.
  const untyped = createClient('ws://127.0.0.1:3000/ws')
  use(untyped.publish('lobby', 'anything', { any: 'thing' }))
  untyped.on('lobby', 'anything', (payload) => {
    expectType<Equal<typeof payload, unknown>>()
  })
  expectType<Equal<ReturnType<typeof untyped.publish>, Promise<unknown>>>()
  expectType<Equal<ReturnType<typeof untyped.rpc>, Promise<unknown>>>()
  use(untyped.rpc('anything', { any: 'thing' }))
}

export function handledTypeChecks (client: RealtimeClient<typeof appActions>): void {
  type M = typeof appActions
  // Payloads: a bare schema or the object form's `payload`.
  expectType<Equal<ActionPayload<M, 'chat.message'>, { text: string }>>()
  expectType<Equal<ActionPayload<M, 'chat.typing'>, { on: boolean }>>()
  expectType<Equal<ActionPayload<M, 'chat.send'>, { text: string }>>()
  // Results: Static<reply> for a handled action, undefined for a relay, unknown for a handled action without reply.
  expectType<Equal<ActionResult<M, 'chat.send'>, { id: string, at: number }>>()
  expectType<Equal<ActionResult<M, 'rooms.list'>, string[]>>()
  expectType<Equal<ActionResult<M, 'chat.message'>, undefined>>()
  expectType<Equal<ActionResult<M, 'chat.typing'>, undefined>>()
  expectType<Equal<ActionResult<M, 'audit.log'>, unknown>>()
  expectType<Equal<ActionResult<M, 'profile.get'>, { name: string }>>()
  expectType<Equal<ActionPayload<M, 'profile.get'>, { userId: string }>>()
  expectType<Equal<HandledActionName<M>, 'chat.send' | 'rooms.list' | 'audit.log' | 'profile.save' | 'profile.get'>>()
  // The server's own defineAction: the reply type reaches publish and rpc.
  expectType<Equal<ActionResult<M, 'profile.save'>, { saved: boolean }>>()
  const saved: Promise<{ saved: boolean }> = client.rpc('profile.save', { name: 'Ada' })
  use(saved)
  // @ts-expect-error: the payload of a defineAction entry is checked
  use(client.rpc('profile.save', { name: 1 }))
  const profile: Promise<{ name: string }> = client.rpc('profile.get', { userId: 'u1' })
  use(profile)
  // @ts-expect-error: wrong payload of a helper-defined action
  use(client.rpc('profile.get', { id: 'u1' }))

  const sent: Promise<{ id: string, at: number }> = client.publish('lobby', 'chat.send', { text: 'hi' })
  const relayed: Promise<undefined> = client.publish('lobby', 'chat.message', { text: 'hi' })
  const typing: Promise<undefined> = client.publish('lobby', 'chat.typing', { on: true }, { exceptSelf: true })
  use(sent, relayed, typing)
  // @ts-expect-error: exceptSelf is for relay actions: a handler decides who receives what
  use(client.publish('lobby', 'chat.send', { text: 'hi' }, { exceptSelf: true }))
  use(client.publish('lobby', 'chat.send', { text: 'hi' }).then((reply) => {
    const id: string = reply.id
    // @ts-expect-error: not a field of the reply
    use(id, reply.text)
  }))
  use(client.publish('lobby', 'chat.message', { text: 'hi' }).then((reply) => {
    // @ts-expect-error: a relay action resolves with undefined
    use(reply.id)
  }))
  // @ts-expect-error: the payload of the object form is checked too
  use(client.publish('lobby', 'chat.send', { text: 1 }))
  // @ts-expect-error: the object form's payload, not the definition
  use(client.publish('lobby', 'chat.typing', { payload: { on: true } }))

  const rooms: Promise<string[]> = client.rpc('rooms.list', {})
  const stored: Promise<{ id: string, at: number }> = client.rpc('chat.send', { text: 'hi' })
  const audited: Promise<unknown> = client.rpc('audit.log', { n: 1 })
  use(rooms, stored, audited)
  // @ts-expect-error: a relay action needs a channel: publish it
  use(client.rpc('chat.message', { text: 'hi' }))
  // @ts-expect-error: an object-form relay (no handler) needs a channel too
  use(client.rpc('chat.typing', { on: true }))
  // @ts-expect-error: wrong payload
  use(client.rpc('chat.send', { text: 1 }))
  // @ts-expect-error: the payload is required
  use(client.rpc('rooms.list'))
  // @ts-expect-error: unknown action
  use(client.rpc('rooms.nope', {}))
  // @ts-expect-error: the result of rooms.list is string[]
  const wrong: Promise<number[]> = client.rpc('rooms.list', {})
  use(wrong)

  client.on('lobby', 'chat.send', (payload, meta) => {
    expectType<Equal<typeof payload, { text: string }>>()
    expectType<Equal<typeof meta.action, 'chat.send'>>()
  })
  client.on('lobby', 'chat.typing', (payload) => {
    expectType<Equal<typeof payload, { on: boolean }>>()
  })
  expectType<Equal<typeof client, ReturnType<typeof createClient<typeof appActions>>>>()
}

const here = fileURLToPath(import.meta.url)
const root = join(dirname(here), '..')

/** Type-checks `files` with the project's tsconfig; `extra` adds in-memory files. Returns the diagnostics. */
function typeCheck (files: string[], extra: Record<string, string> = {}): readonly ts.Diagnostic[] {
  const configPath = join(root, 'tsconfig.json')
  const config = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p))
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
  const host = ts.createCompilerHost(parsed.options)
  const getSourceFile = host.getSourceFile.bind(host)
  host.getSourceFile = (name, version, ...rest) => extra[name] !== undefined
    ? ts.createSourceFile(name, extra[name]!, version)
    : getSourceFile(name, version, ...rest)
  const fileExists = host.fileExists.bind(host)
  host.fileExists = (name) => extra[name] !== undefined || fileExists(name)
  const program = ts.createProgram([...files, ...Object.keys(extra)], { ...parsed.options, noEmit: true }, host)
  return ts.getPreEmitDiagnostics(program)
}

function format (diagnostics: readonly ts.Diagnostic[]): string[] {
  return diagnostics.map((d) => {
    const where = d.file === undefined ? '' : `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: `
    return `${where}TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
  })
}

const snippet = join(root, 'test', '__snippet__.ts')
const snippetSource = `
import Type from 'typebox'
import { createClient } from '../lib/client/index.js'
export const actions = { 'chat.message': Type.Object({ text: Type.String() }) }
const client = createClient<typeof actions>('ws://127.0.0.1:1/ws')
void client.publish('lobby', 'chat.message', { text: 42 })
`
// One program for both checks (building it takes seconds).
const diagnostics = typeCheck([here], { [snippet]: snippetSource })

t.test('the type tests of this file compile, and every @ts-expect-error line is an error', async (t) => {
  t.same(format(diagnostics.filter((d) => d.file?.fileName !== snippet)), [])
})

t.test('a wrong payload does not compile', async (t) => {
  const errors = format(diagnostics.filter((d) => d.file?.fileName === snippet))
  t.equal(errors.length, 1, errors.join('\n'))
  t.match(errors[0], /__snippet__\.ts:6: TS2322 .*number.*string/s)
})

t.test('RealtimeError carries its code at run time', async (t) => {
  const err = new RealtimeError('TIMEOUT', 'late', { id: 3 })
  t.ok(err instanceof Error)
  t.same({ name: err.name, code: err.code, id: err.id, message: err.message }, { name: 'RealtimeError', code: 'TIMEOUT', id: 3, message: 'late' })
})
