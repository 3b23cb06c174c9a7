/**
 * The internal message format between nodes, on adapter topics. Adapters only ever see strings:
 *
 * - A message starting with `{` is a delivery frame (`{"type":"message",...}`), serialised once at the publishing
 *   node and forwarded as-is to every local member: the format of protocol v1, unchanged. Telling it apart costs
 *   one `charCodeAt` test.
 * - Anything else is an *extended* message: `#<header JSON>\n<frame or empty>`. The header is decoded once per
 *   message per node (never per member):
 *   - `e` (string): a deviceId whose connections must not receive the frame (`publish(..., { except })`, the
 *     client's `exceptSelf`);
 *   - `c` (`'join' | 'leave' | 'disconnect'`): a control command, only on a device topic (`device:<deviceId>`),
 *     applied to every local connection of that deviceId, never forwarded to a client; `join` / `leave` carry
 *     `channel`, `disconnect` carries `code` (4000-4999) and `reason` (at most 123 bytes). The frame part is empty.
 *   Unknown header fields are ignored, so later versions may add some (e.g. a history offset).
 */

/** A control command carried on a device topic. */
export type ControlCommand =
  | { c: 'join', channel: string }
  | { c: 'leave', channel: string }
  | { c: 'disconnect', code: number, reason: string }

/** The header of an extended message. */
export interface EnvelopeHeader {
  /** Except this deviceId: its connections do not receive the frame. */
  e?: string
  /** A control command (device topics only); see `ControlCommand`. */
  c?: ControlCommand['c']
  channel?: string
  code?: number
  reason?: string
}

/** A decoded extended message. */
export interface Envelope {
  header: EnvelopeHeader
  /** The delivery frame, or `''` for a control command. */
  frame: string
}

const HASH = 35

/** Builds an extended message: `#<header JSON>\n<frame>`. */
export function encodeEnvelope (header: EnvelopeHeader, frame = ''): string {
  return `#${JSON.stringify(header)}\n${frame}`
}

/**
 * Decodes an extended message (one that does not start with `{`); `undefined` when it is not one (the caller logs
 * and drops it). Never throws.
 */
export function decodeEnvelope (message: string): Envelope | undefined {
  if (message.charCodeAt(0) !== HASH) return undefined
  const end = message.indexOf('\n')
  if (end === -1) return undefined
  let header: unknown
  try {
    header = JSON.parse(message.slice(1, end))
  } catch {
    return undefined
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) return undefined
  return { header: header as EnvelopeHeader, frame: message.slice(end + 1) }
}

/** The control command of a header, or `undefined` when it carries none or a malformed one. */
export function controlCommand (header: EnvelopeHeader): ControlCommand | undefined {
  const { c, channel, code, reason } = header
  if ((c === 'join' || c === 'leave') && typeof channel === 'string') return { c, channel }
  if (c === 'disconnect' && typeof code === 'number' && typeof reason === 'string') return { c, code, reason }
  return undefined
}
