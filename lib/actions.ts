/**
 * The action registry: each registered action is a *relay* (validated, authorized and fanned out as sent) or a
 * *handled* action (validated, authorized, then given to the application's handler on the receiving node, whose
 * resolved value is the reply). Also the static types that one action map drives: the handler's payload, the reply
 * (`ack.result`) and the payloads of `publish` / `sendToDevice` / `connection.send`.
 *
 * Every schema is checked at register time: it must be a TypeBox schema or a plain JSON Schema object that is
 * valid against the JSON Schema draft-07 meta-schema, with no functions in it (a Zod or Joi schema is refused, it
 * would otherwise validate nothing).
 */
import type { Static, TSchema } from 'typebox'
import { Compile, type Validator } from 'typebox/compile'
import { Meta } from 'typebox/schema'
import type { RealtimeConnection } from './connection.js'
import { FST_REALTIME_INVALID_OPTION, FST_REALTIME_UNKNOWN_ACTION, FST_REALTIME_VALIDATION_FAILED } from './errors.js'
import { isActionName, messageFrame, payloadErrors } from './protocol.js'

/** What an action handler receives. */
export interface ActionCall<P = unknown, Auth = unknown> {
  /** The connection that sent the action. */
  connection: RealtimeConnection<Auth>
  /** The channel of the frame (joined by the connection), or `undefined` for a channel-less call. */
  channel: string | undefined
  /** The action name. */
  action: string
  /** The payload, validated against the action's `payload` schema. */
  payload: P
}

/**
 * A handled action's server code. Runs on the node that received the frame, after validation and
 * `authorizePublish`; while it is pending that connection's later frames wait. Its resolved value is the reply
 * (`ack.result`, checked against `reply` when declared). Throw `RealtimeError` to answer an application error code;
 * any other throw answers `INTERNAL`. Not settled within `handlerTimeout` ms: answered `TIMEOUT`.
 */
export type ActionHandler<P = any, R = unknown, Auth = any> = (call: ActionCall<P, Auth>) => R | Promise<R>

/**
 * The object form of an action: `payload` schema, optional `reply` schema, optional `handler`. Without `handler`
 * the action is a relay, like a bare schema.
 */
export interface ActionSpec<P extends TSchema = TSchema, R extends TSchema = TSchema, Auth = any> {
  /** TypeBox (or valid JSON Schema) schema of the payload. */
  payload: P
  /** Schema of the handler's resolved value; a value failing it is answered `INTERNAL` and logged. */
  reply?: R
  /** Makes the action handled (not fanned out by the plugin). */
  handler?: ActionHandler<Static<P>, Static<R>, Auth>
}

/** One entry of the `actions` option: a payload schema (a relay action) or an `ActionSpec`. */
export type ActionEntry = TSchema | ActionSpec<any, any, any>

/** A map of action name -> payload schema (relay) or `ActionSpec` (relay, or handled with `handler`). */
export type ActionMap = { [name: string]: ActionEntry }

/** The payload schema of an action entry. */
export type PayloadSchemaOf<E> = E extends { payload: infer P extends TSchema } ? P : E extends TSchema ? E : never

/** The static payload type of action `K` of map `A`. */
export type ActionPayload<A, K extends keyof A> = Static<PayloadSchemaOf<A[K]>>

/**
 * The static type of the reply (`ack.result`) of action `K` of map `A`: `Static<reply>` for a handled action that
 * declares `reply`, `unknown` for a handled action without it, `undefined` for a relay.
 */
export type ActionReply<A, K extends keyof A> = A[K] extends { handler: ActionHandler }
  ? (A[K] extends { reply?: infer R extends TSchema } ? Static<R> : unknown)
  : undefined

/** An `ActionSpec` with its `handler`: what `defineAction` returns for a handled action. */
export type HandledActionSpec<P extends TSchema = TSchema, R extends TSchema = TSchema, Auth = any> =
  ActionSpec<P, R, Auth> & { handler: ActionHandler<Static<P>, Static<R>, Auth> }

/**
 * Defines a handled (or relay) action with its types inferred: `handler`'s `payload` is `Static<payload>` and its
 * return must match `reply`. Returns `spec` unchanged.
 *
 * ```ts
 * const actions = {
 *   'chat.send': defineAction({
 *     payload: Type.Object({ text: Type.String() }),
 *     reply: Type.Object({ id: Type.String() }),
 *     handler: async ({ payload, connection }) => ({ id: await store(connection.deviceId, payload.text) })
 *   })
 * }
 * ```
 */
export function defineAction<P extends TSchema, R extends TSchema = TSchema, Auth = any> (spec: HandledActionSpec<P, R, Auth>): HandledActionSpec<P, R, Auth>
export function defineAction<P extends TSchema> (spec: { payload: P }): ActionSpec<P>
export function defineAction (spec: ActionSpec): ActionSpec {
  return spec
}

/** A registered action, as compiled at register time. The AsyncAPI document is generated from this shape. */
export interface ActionDefinition {
  /** The action name. */
  name: string
  /** Schema of the payload. */
  payload: TSchema
  /** Schema of the handler's reply, when declared. */
  reply?: TSchema
  /** The handler: present for handled actions, absent for relays. */
  handler?: ActionHandler
  /** Compiled validator of `payload`. */
  validate: Validator
  /** Compiled validator of `reply`, when declared. */
  validateReply?: Validator
}

const SPEC_KEYS = new Set(['payload', 'reply', 'handler'])
let metaSchema: Validator | undefined

/**
 * Compiles the `actions` option into the registry.
 * @throws FST_REALTIME_INVALID_OPTION naming the action: a bad name, a schema that is not a valid JSON Schema
 *   (draft-07 meta-schema) or that carries functions (Zod, Joi...), an unknown key of the object form, or a
 *   `handler` that is not a function.
 */
export function compileActions (actions: unknown): ReadonlyMap<string, ActionDefinition> {
  if (actions === null || typeof actions !== 'object' || Array.isArray(actions)) {
    throw new FST_REALTIME_INVALID_OPTION('actions must be an object of action name -> TypeBox schema or { payload, reply?, handler? }')
  }
  const registry = new Map<string, ActionDefinition>()
  for (const [name, entry] of Object.entries(actions)) {
    if (!isActionName(name)) {
      throw new FST_REALTIME_INVALID_OPTION(`action name "${name}" must match ^[A-Za-z0-9:_.-]{1,128}$`)
    }
    registry.set(name, definition(name, entry))
  }
  return registry
}

function definition (name: string, entry: unknown): ActionDefinition {
  if (!isObjectForm(entry)) return { name, payload: entry as TSchema, validate: compile(entry, `actions["${name}"]`) }
  for (const key of Object.keys(entry)) {
    if (!SPEC_KEYS.has(key)) throw new FST_REALTIME_INVALID_OPTION(`actions["${name}"] has an unknown key "${key}" (payload, reply, handler)`)
  }
  const { payload, reply, handler } = entry
  const def: ActionDefinition = { name, payload: payload as TSchema, validate: compile(payload, `actions["${name}"].payload`) }
  if (reply !== undefined) {
    def.reply = reply as TSchema
    def.validateReply = compile(reply, `actions["${name}"].reply`)
  }
  if (handler !== undefined) {
    if (typeof handler !== 'function') throw new FST_REALTIME_INVALID_OPTION(`actions["${name}"].handler must be a function`)
    def.handler = handler as ActionHandler
  }
  return def
}

function isObjectForm (entry: unknown): entry is { payload: unknown, reply?: unknown, handler?: unknown } {
  return entry !== null && typeof entry === 'object' && Object.hasOwn(entry, 'payload')
}

function compile (schema: unknown, where: string): Validator {
  const problem = schemaProblem(schema)
  if (problem !== undefined) throw new FST_REALTIME_INVALID_OPTION(`${where} ${problem}`)
  try {
    return Compile(schema as TSchema)
  } catch (err) {
    throw new FST_REALTIME_INVALID_OPTION(`${where} could not be compiled: ${(err as Error).message}`)
  }
}

/** Why `schema` is not usable as a JSON Schema, or `undefined` when it is. */
function schemaProblem (schema: unknown): string | undefined {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) {
    return 'must be a TypeBox schema (e.g. Type.Object({...})) or a JSON Schema object'
  }
  const foreign = foreignValue(schema, '', 0)
  if (foreign !== undefined) {
    return `is not a JSON Schema: ${foreign} (a Zod or Joi schema validates nothing here; use TypeBox or JSON Schema)`
  }
  metaSchema ??= Compile(Meta['http://json-schema.org/draft-07/schema#'] as TSchema)
  if (!metaSchema.Check(schema)) {
    const first = metaSchema.Errors(schema)[0]
    return `is not a valid JSON Schema: ${first === undefined ? 'fails the draft-07 meta-schema' : `${first.instancePath === '' ? '/' : first.instancePath} ${first.message}`}`
  }
  return undefined
}

/** The path of the first function or class instance in a schema (own enumerable keys; TypeBox keeps its own hidden). */
function foreignValue (value: object, path: string, depth: number): string | undefined {
  if (depth > 64) return `${path} nests deeper than 64 levels`
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null && !Array.isArray(value)) {
    return `${path === '' ? 'the schema' : path} is an instance of ${(proto.constructor as { name?: string } | undefined)?.name ?? 'a class'}`
  }
  for (const [key, child] of Object.entries(value)) {
    if (typeof child === 'function') return `${path}/${key} is a function`
    if (child !== null && typeof child === 'object') {
      const found = foreignValue(child, `${path}/${key}`, depth + 1)
      if (found !== undefined) return found
    }
  }
  return undefined
}

/**
 * Serialises a server-sent `message` frame (`from: null`; no `channel` when `channel` is undefined) after checking
 * the payload against the action's schema, for `publish`, `sendToDevice` and `connection.send`.
 * @throws FST_REALTIME_UNKNOWN_ACTION, FST_REALTIME_VALIDATION_FAILED (with `details: { path, message }[]`)
 */
export function serverMessage (registry: ReadonlyMap<string, ActionDefinition>, channel: string | undefined, action: string, payload: unknown): string {
  const def = registry.get(action)
  if (def === undefined) throw new FST_REALTIME_UNKNOWN_ACTION(String(action))
  const details = payloadErrors(def.validate, payload)
  if (details !== undefined) throw Object.assign(new FST_REALTIME_VALIDATION_FAILED(action), { details })
  return messageFrame(channel, action, payload, null)
}
