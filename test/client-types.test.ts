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
import Type from 'typebox'
import {
  createClient, RealtimeError, type ActionPayload, type CloseDetail, type RealtimeClient, type RealtimeErrorCode
} from '../lib/client/index.js'

export const actions = {
  'chat.message': Type.Object({ text: Type.String() }),
  'cursor.move': Type.Object({ x: Type.Number(), y: Type.Number() })
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

  const joined: Promise<void> = client.join('lobby')
  const left: Promise<void> = client.leave('lobby')
  use(joined, left)

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

  // Without the action map: any action, unknown payloads.
  const untyped = createClient('ws://127.0.0.1:3000/ws')
  use(untyped.publish('lobby', 'anything', { any: 'thing' }))
  untyped.on('lobby', 'anything', (payload) => {
    expectType<Equal<typeof payload, unknown>>()
  })
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
