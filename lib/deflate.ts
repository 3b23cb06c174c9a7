/**
 * permessage-deflate (RFC 7692) on the server's side of deliveries: a message is compressed **once per node** and
 * the same compressed frame is written to every member that negotiated the extension (the shared compressor of
 * uWebSockets), never once per member as ws's own per-socket deflate does.
 *
 * Each message is compressed on its own (a fresh DEFLATE context, `server_no_context_takeover`), which makes the bytes
 * valid for every socket whatever its negotiated context: the receiver's window only ever serves back-references
 * inside the message. The compression ends with a sync flush and the trailing `00 00 ff ff` is removed (§7.2.1), so
 * a receiver that keeps its inflate context (context takeover on its side) reads it too. The one per-socket constraint
 * is `server_max_window_bits` (§7.1.2.1): one cached frame per window size.
 */
import { constants, deflateRawSync } from 'node:zlib'
import type { Counters } from './counters.js'
import { DEFAULT_DEFLATE_LEVEL, DEFAULT_DEFLATE_THRESHOLD } from './constants.js'
import { FST_REALTIME_INVALID_OPTION } from './errors.js'
import { deflatedTextFrame, textFrame } from './frame.js'
import { integerOption } from './option-checks.js'

/** The `perMessageDeflate` plugin option: `true` for the defaults, or the two settings. */
export interface PerMessageDeflateOptions {
  /** Smallest message payload, in bytes, that is compressed; smaller ones are sent plain. Default 1024. */
  threshold?: number
  /** zlib compression level, 1 (fastest) to 9 (smallest). Default 1. */
  level?: number
}

/** The resolved option: the settings, or `undefined` when the extension is not offered. */
export interface ResolvedDeflate { threshold: number, level: number }

/**
 * Validates the `perMessageDeflate` option. `false`/`undefined` (the default): not negotiated.
 * @throws FST_REALTIME_INVALID_OPTION for anything but a boolean or `{ threshold?, level? }` with integers in range.
 */
export function resolvePerMessageDeflate (value: unknown): ResolvedDeflate | undefined {
  if (value === undefined || value === false) return undefined
  if (value === true) return { threshold: DEFAULT_DEFLATE_THRESHOLD, level: DEFAULT_DEFLATE_LEVEL }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FST_REALTIME_INVALID_OPTION('perMessageDeflate must be a boolean or { threshold?, level? }')
  }
  const { threshold, level, ...rest } = value as PerMessageDeflateOptions
  const extra = Object.keys(rest)
  if (extra.length > 0) throw new FST_REALTIME_INVALID_OPTION(`perMessageDeflate has unknown keys ${extra.join(', ')}; it takes threshold, level`)
  const resolved = {
    threshold: integerOption(threshold, DEFAULT_DEFLATE_THRESHOLD, 'perMessageDeflate.threshold (bytes)', 0),
    level: integerOption(level, DEFAULT_DEFLATE_LEVEL, 'perMessageDeflate.level', 1)
  }
  if (resolved.level > 9) throw new FST_REALTIME_INVALID_OPTION(`perMessageDeflate.level must be an integer from 1 to 9, got ${resolved.level}`)
  return resolved
}

/**
 * The `perMessageDeflate` option of ws's WebSocketServer for `resolved`: `false` when off. The server always answers
 * `server_no_context_takeover` (what every shared frame needs) and `client_no_context_takeover` (RFC 7692 §7.1.1.2
 * lets a server ask it even unoffered; the client then compresses each message alone and the server needs no
 * inflate history between messages). ws's own compressor is never used for what this plugin sends.
 */
export function wsPerMessageDeflate (resolved: ResolvedDeflate | undefined): false | Record<string, unknown> {
  if (resolved === undefined) return false
  return { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: resolved.threshold }
}

/** zlib cannot write a raw DEFLATE stream with an 8-bit window (it silently uses 9): such sockets get plain frames. */
const MIN_WINDOW_BITS = 9
const MAX_WINDOW_BITS = 15

/** The parameters ws accepted for a socket's permessage-deflate (RFC 7692 §7.1), numbers already parsed. */
interface DeflateParams { server_max_window_bits?: number }

/**
 * The LZ77 window (bits) this server may use towards `socket` (a ws WebSocket): 15 unless the client lowered it with
 * `server_max_window_bits`; 0 when permessage-deflate was not negotiated, or with a window zlib cannot honour (the
 * socket then gets uncompressed frames, always valid). ws exposes only the extension names (`socket.extensions`);
 * the accepted parameters are read from its extension object (`_extensions`, ws 8).
 */
export function deflateWindowBits (socket: object): number {
  const extension = (socket as { _extensions?: Record<string, { params?: DeflateParams | null } | undefined> })._extensions?.['permessage-deflate']
  const params = extension?.params
  if (params === undefined || params === null) return 0
  const bits = params.server_max_window_bits ?? MAX_WINDOW_BITS
  return bits >= MIN_WINDOW_BITS && bits <= MAX_WINDOW_BITS ? bits : 0
}

/**
 * One node's compressor. `frameFor` keeps the last message's compressed frame per window size, so the fan-out of a
 * message to its members compresses it once (the first deflate member) and every other deflate member gets the same
 * Buffer: no allocation per member. Each compression counts in `counters.framesDeflated` (shown by `stats()`).
 */
export class Deflater {
  readonly #threshold: number
  readonly #level: number
  /** Per window size (index = bits): the payload last compressed and its frame. */
  readonly #payloads: Array<Buffer | undefined> = new Array(MAX_WINDOW_BITS + 1).fill(undefined)
  readonly #frames: Array<Buffer | undefined> = new Array(MAX_WINDOW_BITS + 1).fill(undefined)
  readonly #counters: Counters

  /** `settings`: the resolved option; the defaults when the app's own ws server negotiated the extension. */
  constructor (settings: ResolvedDeflate | undefined, counters: Counters) {
    this.#counters = counters
    this.#threshold = settings?.threshold ?? DEFAULT_DEFLATE_THRESHOLD
    this.#level = settings?.level ?? DEFAULT_DEFLATE_LEVEL
  }

  /**
   * The frame of a delivery for a socket with window `bits` (from `deflateWindowBits`, > 0): `plain` (the frame built
   * once per message) under the threshold, else the compressed frame, built at the first call for this payload.
   */
  frameFor (payload: Buffer, plain: Buffer, bits: number): Buffer {
    if (payload.length < this.#threshold) return plain
    if (this.#payloads[bits] === payload) return this.#frames[bits]!
    const frame = this.#compress(payload, bits)
    this.#payloads[bits] = payload
    this.#frames[bits] = frame
    return frame
  }

  /** The frame of a message to one socket only (replies, replays): compressed at or over the threshold. */
  frameOf (payload: Buffer, bits: number): Buffer {
    return payload.length < this.#threshold ? textFrame(payload) : this.#compress(payload, bits)
  }

  #compress (payload: Buffer, bits: number): Buffer {
    this.#counters.framesDeflated++
    const out = deflateRawSync(payload, { level: this.#level, windowBits: bits, finishFlush: constants.Z_SYNC_FLUSH })
    // A sync flush ends with an empty stored block, 00 00 ff ff: removed on the wire, added back by the receiver.
    return deflatedTextFrame(out.subarray(0, out.length - 4))
  }
}
