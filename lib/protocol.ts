/**
 * Wire protocol v1.2 (see docs/protocol.md): TypeBox schemas of every frame, compiled validators,
 * wire error codes and frame builders. Pure functions: no sockets, no Redis.
 */
import Type, { type Static } from 'typebox'
import { Compile, type Validator } from 'typebox/compile'
import sjson from 'secure-json-parse'
import { ACTION_PATTERN, CHANNEL_PATTERN, DEVICE_ID_PATTERN, MAX_ID_LENGTH } from './constants.js'

/** Error codes sent to clients in `{"type":"error","code":...}` frames. */
export const WireErrorCode = {
  /** The frame is not JSON, too deep, or not a valid envelope. */
  BAD_REQUEST: 'BAD_REQUEST',
  /** The action name is not registered on the server. */
  UNKNOWN_ACTION: 'UNKNOWN_ACTION',
  /** The payload failed the action's schema; `details` lists the failing JSON paths. */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  /** An action was sent to a channel this connection has not joined. */
  NOT_JOINED: 'NOT_JOINED',
  /** `authorizeJoin` refused the join. */
  FORBIDDEN: 'FORBIDDEN',
  /** The connection already joined `maxChannelsPerConnection` channels. */
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  /** Too many frames in the rate-limit window. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** The pub/sub backend is unreachable; nothing was delivered. Safe to retry. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** An unexpected server error. The message never carries internal details. */
  INTERNAL: 'INTERNAL',
  /** A handled action's handler did not settle within the server's `handlerTimeout`; its later result is dropped. */
  TIMEOUT: 'TIMEOUT'
} as const
export type WireErrorCode = typeof WireErrorCode[keyof typeof WireErrorCode]

/** A request id chosen by the client: a string of at most 64 characters or a non-negative integer. */
export const RequestId = Type.Union([Type.String({ maxLength: MAX_ID_LENGTH }), Type.Integer({ minimum: 0 })])
/** A channel name: `^[A-Za-z0-9:_.-]{1,128}$`. */
export const ChannelName = Type.String({ pattern: CHANNEL_PATTERN })
/** An action name: `^[A-Za-z0-9:_.-]{1,128}$`. */
export const ActionName = Type.String({ pattern: ACTION_PATTERN })
/** A deviceId: `^[A-Za-z0-9_-]{1,64}$`. */
export const DeviceId = Type.String({ pattern: DEVICE_ID_PATTERN })

const strict = { additionalProperties: false }

/** A position in a channel's stream, as the client last saw it (from `joined`, a delivery or a `reset`). */
export const StreamPosition = Type.Object({
  offset: Type.Integer({ minimum: 0 }), epoch: Type.String({ minLength: 1, maxLength: 64 })
}, strict)

/**
 * Client -> server: join a channel. `since` (v1.2, channels with history): the client's last position; the reply
 * says whether every message after it follows (`recovered`).
 */
export const JoinFrame = Type.Object({
  type: Type.Literal('join'), channel: ChannelName, id: Type.Optional(RequestId), since: Type.Optional(StreamPosition)
}, strict)
/** Client -> server: leave a channel. */
export const LeaveFrame = Type.Object({
  type: Type.Literal('leave'), channel: ChannelName, id: Type.Optional(RequestId)
}, strict)
/**
 * Client -> server: publish an action to a joined channel, or call a handled action. `channel` may be absent for
 * handled actions only (a request/response call). `exceptSelf: true` (relay actions only) delivers to every member
 * except the connections of the sender's deviceId.
 */
export const ActionFrame = Type.Object({
  type: Type.Literal('action'),
  channel: Type.Optional(ChannelName),
  action: ActionName,
  payload: Type.Optional(Type.Unknown()),
  exceptSelf: Type.Optional(Type.Boolean()),
  id: Type.Optional(RequestId)
}, strict)

export type JoinFrame = Static<typeof JoinFrame>
export type LeaveFrame = Static<typeof LeaveFrame>
export type ActionFrame = Static<typeof ActionFrame>
/** Any frame a client may send. */
export type ClientFrame = JoinFrame | LeaveFrame | ActionFrame
export type RequestId = Static<typeof RequestId>

/** One failing location of a validation: a JSON pointer into the frame and a human message. */
export interface ValidationDetail { path: string, message: string }

/** Server -> client: always the first frame of a connection, with the deviceId it was given or assigned. */
export interface WelcomeFrame { type: 'welcome', deviceId: string }
/**
 * Server -> client: the join succeeded and the node's subscription is active; `id` echoes the request's. Without
 * `id` it is unsolicited: the server joined the connection (`app.realtime.join`, `connection.join`, or the
 * `channels` returned by `authenticate`).
 */
export interface JoinedFrame {
  type: 'joined',
  channel: string,
  id?: RequestId
  /** Channels with history (v1.2): the incarnation of the channel's stream. */
  epoch?: string
  /** Channels with history (v1.2): the channel's latest offset when the join took effect (0 for an empty stream). */
  offset?: number
  /**
   * Joins that sent `since` (v1.2): true when every message after `since.offset` follows, as `message` frames in
   * offset order up to `offset`, then live ones; false: nothing is replayed, reload the state.
   */
  recovered?: boolean
}
/**
 * Server -> client: the connection no longer receives the channel (also for a channel it had not joined). Without
 * `id` it is unsolicited: the server removed the connection (`app.realtime.leave`, `connection.leave`).
 */
export interface LeftFrame { type: 'left', channel: string, id?: RequestId }
/**
 * Server -> client, for a request that carried this `id`: a relay action was accepted by the adapter, or a handled
 * action's handler resolved; `result` is the handler's value (absent when it resolved `undefined` and for relays).
 */
export interface AckFrame<R = unknown> { type: 'ack', id: RequestId, result?: R }
/**
 * Server -> client: a request failed. `code` is a `WireErrorCode` (the default type parameter) or, for a handled
 * action whose handler threw `RealtimeError`, the application's code (`^[A-Z][A-Z0-9_]{2,63}$`, type
 * `ErrorFrame<string, unknown>`). `details`: failing JSON paths `[{ path, message }]` for BAD_REQUEST /
 * VALIDATION_FAILED; any JSON value given to `RealtimeError`.
 */
export interface ErrorFrame<C extends string = WireErrorCode, D = ValidationDetail[]> {
  type: 'error', code: C, message: string, id?: RequestId, details?: D
}
/** A delivery: `channel` is absent for a direct message (`sendToDevice`); `from` is null for server publishes. */
export interface MessageFrame<P = unknown> {
  type: 'message',
  channel?: string,
  action: string,
  payload: P,
  from: string | null
  /** Channels with history (v1.2): +1 per message of the channel, the same on every node. */
  offset?: number
}
/**
 * Server -> client (v1.2, channels with history): continuity was lost while joined (messages missed that the
 * stream no longer holds, or a new epoch): reload the state; deliveries continue after `offset` of `epoch`.
 */
export interface ResetFrame { type: 'reset', channel: string, epoch: string, offset: number }
/** A member of a presence channel: a device with at least one connection in it, on any node. */
export interface PresenceMemberFrame { deviceId: string, info?: unknown }
/** Server -> client (v1.2, presence channels): everyone in the channel, right after `joined` (and its replay). */
export interface PresenceFrame { type: 'presence', channel: string, members: PresenceMemberFrame[] }
/** Server -> client (v1.2, presence channels): devices whose first connection joined or last connection left. */
export interface PresenceDiffFrame { type: 'presence_diff', channel: string, joins: PresenceMemberFrame[], leaves: PresenceMemberFrame[] }
export type ServerFrame = WelcomeFrame | JoinedFrame | LeftFrame | AckFrame | ErrorFrame | MessageFrame | ResetFrame |
  PresenceFrame | PresenceDiffFrame

const envelopeValidators = {
  join: Compile(JoinFrame),
  leave: Compile(LeaveFrame),
  action: Compile(ActionFrame)
}
const requestIdValidator = Compile(RequestId)
const channelValidator = Compile(ChannelName)
const deviceIdValidator = Compile(DeviceId)
const actionNameValidator = Compile(ActionName)

/** True when `channel` is a valid channel name. */
export function isChannelName (channel: unknown): channel is string {
  return channelValidator.Check(channel)
}
/** True when `deviceId` is a valid deviceId. */
export function isDeviceId (deviceId: unknown): deviceId is string {
  return deviceIdValidator.Check(deviceId)
}
/** True when `action` is a valid action name. */
export function isActionName (action: unknown): action is string {
  return actionNameValidator.Check(action)
}

/** Maps TypeBox errors to `{ path, message }`, with `prefix` prepended to each JSON pointer. */
export function toDetails (errors: ReadonlyArray<{ instancePath: string, message: string }>, prefix = ''): ValidationDetail[] {
  return errors.map((e) => ({ path: prefix + e.instancePath, message: e.message }))
}

/**
 * Checks an action's payload with its compiled validator: `undefined` when valid, else the failing JSON paths
 * under `/payload` (errors are only computed on failure: `Errors()` is ~50x slower than `Check()`).
 */
export function payloadErrors (validator: Validator, payload: unknown): ValidationDetail[] | undefined {
  return validator.Check(payload) ? undefined : toDetails(validator.Errors(payload), '/payload')
}

/** Result of parsing one client frame. */
export type ParseResult =
  | { ok: true, frame: ClientFrame }
  | { ok: false, error: ErrorFrame }

/**
 * Parses and validates one text frame from a client: nesting depth bound, prototype-poisoning safe JSON
 * (`__proto__` / `constructor.prototype` keys are refused), then the envelope schema of its `type`.
 * Never throws. A failure is a `BAD_REQUEST` error frame carrying the request id when one could be read.
 */
export function parseClientFrame (text: string, maxDepth: number): ParseResult {
  if (exceedsDepth(text, maxDepth)) {
    return fail('BAD_REQUEST', `Frame nesting is deeper than ${maxDepth}`)
  }
  let value: unknown
  try {
    value = sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
  } catch {
    return fail('BAD_REQUEST', 'Frame is not valid JSON or carries a forbidden key')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return fail('BAD_REQUEST', 'Frame must be a JSON object')
  }
  const obj = value as Record<string, unknown>
  const id = requestIdValidator.Check(obj.id) ? obj.id : undefined
  const validator = typeof obj.type === 'string' ? envelopeValidators[obj.type as keyof typeof envelopeValidators] : undefined
  if (validator === undefined || !Object.hasOwn(envelopeValidators, obj.type as string)) {
    return fail('BAD_REQUEST', 'Frame "type" must be one of join, leave, action', id,
      [{ path: '/type', message: 'must be one of join, leave, action' }])
  }
  if (!validator.Check(obj)) {
    return fail('BAD_REQUEST', `Invalid ${obj.type as string} frame`, id, toDetails(validator.Errors(obj)))
  }
  return { ok: true, frame: obj as ClientFrame }
}

function fail (code: WireErrorCode, message: string, id?: RequestId, details?: ValidationDetail[]): ParseResult {
  return { ok: false, error: errorFrame(code, message, id, details) }
}

/**
 * True when arrays/objects in `text` nest deeper than `max`. A bound check run before `JSON.parse`,
 * so a hostile frame never reaches recursive code (validation, `JSON.stringify` on fan-out).
 */
export function exceedsDepth (text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92) i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) {
      inString = true
    } else if (c === 123 || c === 91) {
      if (++depth > max) return true
    } else if (c === 125 || c === 93) {
      depth--
    }
  }
  return false
}

/** Builds an error frame object (not serialised); `code` is a wire code or an application code. */
export function errorFrame<C extends string = WireErrorCode, D = ValidationDetail[]> (code: C, message: string, id?: RequestId, details?: D): ErrorFrame<C, D> {
  const frame: ErrorFrame<C, D> = { type: 'error', code, message }
  if (id !== undefined) frame.id = id
  if (details !== undefined) frame.details = details
  return frame
}

/**
 * Serialises the first frame of every connection, `{"type":"welcome","deviceId":...}`, from constant parts: a
 * deviceId (DEVICE_ID_PATTERN, checked before the upgrade) has no character JSON escapes.
 */
export function welcomeFrame (deviceId: string): string {
  return '{"type":"welcome","deviceId":"' + deviceId + '"}'
}

/** Serialises a `joined` or `left` reply; the id is echoed when the request had one. */
export function membershipFrame (type: 'joined' | 'left', channel: string, id: RequestId | undefined): string {
  return JSON.stringify(id === undefined ? { type, channel } : { type, channel, id })
}

/**
 * Serialises the `joined` of a channel with history: its stream position, and `recovered` when the join sent
 * `since`.
 */
export function streamJoinedFrame (channel: string, id: RequestId | undefined, epoch: string, offset: number, recovered: boolean | undefined): string {
  const frame: JoinedFrame = { type: 'joined', channel }
  if (id !== undefined) frame.id = id
  frame.epoch = epoch
  frame.offset = offset
  if (recovered !== undefined) frame.recovered = recovered
  return JSON.stringify(frame)
}

/** Serialises a `reset`. */
export function resetFrame (channel: string, epoch: string, offset: number): string {
  return JSON.stringify({ type: 'reset', channel, epoch, offset })
}

/** Serialises a presence snapshot. */
export function presenceFrame (channel: string, members: PresenceMemberFrame[]): string {
  return JSON.stringify({ type: 'presence', channel, members })
}

/** Serialises a presence diff. */
export function presenceDiffFrame (channel: string, joins: PresenceMemberFrame[], leaves: PresenceMemberFrame[]): string {
  return JSON.stringify({ type: 'presence_diff', channel, joins, leaves })
}

/** Serialises an `ack` reply, with the handler's `result` when it is not `undefined`. @throws what JSON.stringify throws */
export function ackFrame (id: RequestId, result?: unknown): string {
  return JSON.stringify(result === undefined ? { type: 'ack', id } : { type: 'ack', id, result })
}

/**
 * Serialises a delivery once per publish; every node forwards this exact string to its members.
 * `channel` undefined makes a direct message (no `channel` key).
 */
export function messageFrame (channel: string | undefined, action: string, payload: unknown, from: string | null): string {
  return JSON.stringify({ type: 'message', channel, action, payload, from })
}
