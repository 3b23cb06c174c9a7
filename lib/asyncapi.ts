/**
 * The AsyncAPI 3.0 document of the WebSocket endpoint (https://www.asyncapi.com/docs/reference/specification/v3.0.0),
 * generated from the same action registry that validates the frames, so it cannot drift from the server.
 *
 * Modelling (the ws binding's own rule: "the channel represents the connection"): one channel `realtime` whose
 * address is the endpoint's path, with the `deviceId` query in its `ws` binding, and a message per frame type in
 * both directions. Operations state the direction from the server's point of view: `receive` for client frames
 * (`join`, `leave`, `action.<name>`), each with its `reply` (the frames that answer it, matched by the request `id`,
 * the correlation id), and `send` for what the server pushes (`welcome`, `message.<name>`).
 * No I/O: the plugin builds the document once at `onReady` and serves it.
 */
import Type, { type TSchema } from 'typebox'
import type { ResolvedAsyncApiOptions } from './asyncapi-options.js'
import { FST_REALTIME_ASYNCAPI_UNSUPPORTED_SCHEMA } from './errors.js'
import { jsonSchemaProblem } from './json-schema.js'
import { ActionName, ChannelName, DeviceId, JoinFrame, LeaveFrame, RequestId, WireErrorCode } from './protocol.js'

/**
 * The part of an action definition the document reads (the shape of `lib/actions.ts`'s `ActionDefinition`):
 * its payload schema, its reply schema, and whether a server handler answers it (`handler` set: a *handled*
 * action, whose `ack` carries the handler's `result`; else a *relay* action fanned out as sent).
 */
export interface DescribedAction { payload: TSchema, reply?: TSchema, handler?: unknown }

/**
 * Extension point for frames that exist only when a feature is enabled (history and presence frames): each
 * feature passes the frames it adds, and the builder turns them into channel messages and operations.
 * Names follow message keys: `^[A-Za-z0-9:_.-]+$`. Schemas must be JSON-describable (the same checks as actions).
 */
export interface AsyncApiFrames {
  /** Client -> server frames: a `receive` operation each, replied by the named server frames (and `error`). */
  client?: Array<{ name: string, summary: string, payload: TSchema, replies: string[] }>
  /** Server -> client frames; `push: true` adds a `send` operation (a frame sent unasked, not only as a reply). */
  server?: Array<{ name: string, summary: string, payload: TSchema, push?: boolean }>
}

/** What `buildAsyncApi` needs besides the actions. */
export interface AsyncApiContext {
  /** Route path of the WebSocket endpoint (the plugin's `path` option). */
  path: string
  options: ResolvedAsyncApiOptions
  /** Frames of enabled features (history, presence). Default none. */
  extensions?: readonly AsyncApiFrames[]
}

/** A JSON value: the document holds nothing else. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** The generated document: an AsyncAPI 3.0.0 object, plain JSON (safe to `JSON.stringify`). */
export interface AsyncApiDocument {
  asyncapi: '3.0.0'
  info: { title: string, version: string, description?: string }
  defaultContentType: 'application/json'
  servers?: Record<string, JsonValue>
  channels: { realtime: { address: string, messages: Record<string, JsonValue>, bindings: JsonValue } & Record<string, JsonValue> }
  operations: Record<string, JsonValue>
  components: Record<string, JsonValue>
}

const CHANNEL = 'realtime'
const CHANNEL_REF = { $ref: `#/channels/${CHANNEL}` }
const CORRELATION = { $ref: '#/components/correlationIds/requestId' }
/** Codes a handler may throw with `RealtimeError` (application codes). */
const APP_CODE_PATTERN = '^[A-Z][A-Z0-9_]{2,63}$'

/** Server frame schemas, for the document only (the server builds these frames in `protocol.ts`). */
const WelcomeSchema = Type.Object({ type: Type.Literal('welcome'), deviceId: DeviceId })
const MembershipSchema = (type: 'joined' | 'left'): TSchema =>
  Type.Object({ type: Type.Literal(type), channel: ChannelName, id: Type.Optional(RequestId) })
const AckSchema = Type.Object({ type: Type.Literal('ack'), id: RequestId })
const ValidationDetails = Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))

/**
 * Builds the AsyncAPI 3.0.0 document of the endpoint from the action registry. Every action gives a client
 * message `action.<name>` (the envelope with its payload schema) and its `receive` operation replied by `ack`
 * (or `ack.<name>`, whose `result` is the reply schema, for a handled action) or `error`, and a server message
 * `message.<name>` (the delivery) with its `send` operation. Schemas are copied as JSON (TypeBox's hidden
 * markers do not appear).
 * @throws FST_REALTIME_ASYNCAPI_UNSUPPORTED_SCHEMA naming the action, when a payload or reply schema holds a
 *   `$ref`/`$defs` (e.g. `Type.Cyclic`, `Type.Ref`), a cycle, a `type` with no JSON form (`Type.Undefined()`,
 *   `Type.BigInt()`, `Type.Function()`...), or a value JSON cannot carry.
 */
export function buildAsyncApi (actions: ReadonlyMap<string, DescribedAction>, context: AsyncApiContext): AsyncApiDocument {
  const { path, options } = context
  const handled = [...actions.values()].some((definition) => definition.handler !== undefined)
  const messages: Record<string, JsonValue> = {}
  const operations: Record<string, JsonValue> = {}
  const message = (name: string, summary: string, payload: JsonValue, correlated: boolean): void => {
    const entry: Record<string, JsonValue> = { name, title: name, summary, payload }
    if (correlated) entry.correlationId = CORRELATION
    messages[name] = entry
  }
  const ref = (name: string): JsonValue => ({ $ref: `#/channels/${CHANNEL}/messages/${name}` })
  const receive = (name: string, summary: string, request: string, replies: string[]): void => {
    operations[name] = {
      action: 'receive',
      channel: CHANNEL_REF,
      summary,
      messages: [ref(request)],
      reply: { channel: CHANNEL_REF, messages: [...replies, 'error'].map(ref) }
    }
  }
  const send = (name: string, summary: string, frame: string): void => {
    operations[name] = { action: 'send', channel: CHANNEL_REF, summary, messages: [ref(frame)] }
  }

  message('join', 'Join a channel.', json(JoinFrame), true)
  message('leave', 'Leave a channel (leaving a channel not joined is not an error).', json(LeaveFrame), true)
  message('welcome', 'First frame of every connection, with the deviceId it was given or assigned.', json(WelcomeSchema), false)
  message('joined', 'The join succeeded: the node\'s subscription to the channel is active.', json(MembershipSchema('joined')), true)
  message('left', 'The connection no longer receives the channel.', json(MembershipSchema('left')), true)
  message('ack', 'The adapter accepted the publish of the relay action that carried this id.', json(AckSchema), true)
  message('error', 'A request failed; the connection stays open.', errorSchema(handled), true)
  receive('join', 'A client joins a channel.', 'join', ['joined'])
  receive('leave', 'A client leaves a channel.', 'leave', ['left'])
  send('welcome', 'The server greets each new connection.', 'welcome')

  for (const [name, definition] of actions) {
    const payload = describe(definition.payload, name, 'payload')
    const isHandled = definition.handler !== undefined
    message(`action.${name}`, isHandled
      ? `Call the handled action "${name}"; the handler's result comes back in ack.${name}.`
      : `Publish "${name}" to a joined channel; every member receives message.${name}.`,
    actionEnvelope(name, payload, isHandled), true)
    let ack = 'ack'
    if (isHandled) {
      ack = `ack.${name}`
      const result = definition.reply === undefined ? {} : describe(definition.reply, name, 'reply')
      message(ack, `The handler of "${name}" resolved; \`result\` is its reply (absent when it resolved nothing).`,
        ackWithResult(result), true)
    }
    message(`message.${name}`, `A delivery of "${name}" to a channel member, or a direct message to a deviceId (no channel).`,
      deliveryEnvelope(name, payload), false)
    receive(`action.${name}`, `A client sends "${name}".`, `action.${name}`, [ack])
    send(`message.${name}`, `The server delivers "${name}".`, `message.${name}`)
  }

  for (const extension of context.extensions ?? []) {
    for (const frame of extension.server ?? []) {
      message(frame.name, frame.summary, describe(frame.payload, frame.name, 'frame'), true)
      if (frame.push === true) send(frame.name, frame.summary, frame.name)
    }
    for (const frame of extension.client ?? []) {
      message(frame.name, frame.summary, describe(frame.payload, frame.name, 'frame'), true)
      receive(frame.name, frame.summary, frame.name, frame.replies)
    }
  }

  const document: AsyncApiDocument = {
    asyncapi: '3.0.0',
    info: {
      ...options.info,
      description: options.info.description ??
        'WebSocket API served by fastify-realtime (wire protocol v1: docs/protocol.md). One JSON text frame per message.'
    },
    defaultContentType: 'application/json',
    channels: {
      [CHANNEL]: {
        address: path,
        title: 'WebSocket endpoint',
        description: 'The connection: every frame in both directions flows through this one channel.',
        messages,
        bindings: {
          ws: {
            method: 'GET',
            query: {
              type: 'object',
              properties: { deviceId: { ...json(DeviceId) as Record<string, JsonValue>, description: 'Optional; assigned (a UUID) when absent.' } }
            },
            bindingVersion: '0.1.0'
          }
        }
      }
    },
    operations,
    components: {
      correlationIds: {
        requestId: { description: 'The optional request `id`, echoed in the reply.', location: '$message.payload#/id' }
      }
    }
  }
  if (options.servers !== undefined) {
    document.servers = Object.fromEntries(Object.entries(options.servers).map(([name, server]) => [name, { ...server }]))
  }
  return document
}

function actionEnvelope (name: string, payload: JsonValue, handled: boolean): JsonValue {
  return {
    type: 'object',
    // A handled action may omit the channel (a request/response call); a relay action always names one.
    required: handled ? ['type', 'action', 'payload'] : ['type', 'channel', 'action', 'payload'],
    additionalProperties: false,
    properties: {
      type: { const: 'action' },
      channel: json(ChannelName),
      action: { ...json(ActionName) as Record<string, JsonValue>, const: name },
      payload,
      id: json(RequestId)
    }
  }
}

function ackWithResult (result: JsonValue): JsonValue {
  return {
    type: 'object',
    required: ['type', 'id'],
    properties: { type: { const: 'ack' }, id: json(RequestId), result }
  }
}

function deliveryEnvelope (name: string, payload: JsonValue): JsonValue {
  return {
    type: 'object',
    required: ['type', 'action', 'payload', 'from'],
    properties: {
      type: { const: 'message' },
      channel: { ...json(ChannelName) as Record<string, JsonValue>, description: 'Absent for a direct message to a deviceId.' },
      action: { const: name },
      payload,
      from: { anyOf: [json(DeviceId), { type: 'null' }], description: 'The publisher\'s deviceId, null for a server publish.' }
    }
  }
}

function errorSchema (handled: boolean): JsonValue {
  const wire: JsonValue = { type: 'string', enum: Object.values(WireErrorCode) }
  const code: JsonValue = handled
    ? { anyOf: [wire, { type: 'string', pattern: APP_CODE_PATTERN, description: 'An application code thrown by a handler.' }] }
    : wire
  return {
    type: 'object',
    required: ['type', 'code', 'message'],
    properties: {
      type: { const: 'error' },
      code,
      message: { type: 'string' },
      id: json(RequestId),
      // Built-in codes carry [{ path, message }]; an application error carries any JSON value.
      details: handled ? {} : json(ValidationDetails)
    }
  }
}

/** A plugin-owned schema as plain JSON (TypeBox markers are non-enumerable and dropped). */
function json (schema: unknown): JsonValue {
  return JSON.parse(JSON.stringify(schema)) as JsonValue
}

/**
 * An action's schema as plain JSON, or the coded error naming the action when it cannot be described.
 * @throws FST_REALTIME_ASYNCAPI_UNSUPPORTED_SCHEMA
 */
function describe (schema: TSchema, name: string, which: string): JsonValue {
  const reason = jsonSchemaProblem(schema)
  if (reason !== undefined) throw new FST_REALTIME_ASYNCAPI_UNSUPPORTED_SCHEMA(which, name, reason)
  return json(schema)
}
