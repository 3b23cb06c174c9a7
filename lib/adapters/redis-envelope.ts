/**
 * The strings the Redis adapter PUBLISHes. A message is sent as-is unless it starts with `\x01`; that character
 * opens an envelope: `\x01<offset> <epoch> <message>` carries a stream position (written by the history script,
 * redis-history.ts), `\x01 <message>` a plain message that itself begins with `\x01`. Epochs never contain a space.
 * The plugin's frames start with `{`, so on the hot path decoding costs one character comparison.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { MessageHandler } from './adapter.js'
import { callHandlers } from './handlers.js'

const ENVELOPE = 1

/** The string to PUBLISH for a plain (position-less) `message`. */
export function plainEnvelope (message: string): string {
  return message.charCodeAt(0) === ENVELOPE ? '\u0001 ' + message : message
}

/**
 * Calls `handlers` with the message and position carried by `raw`, as received on Redis channel `channel`. A
 * malformed envelope is logged and dropped.
 */
export function deliverEnvelope (handlers: Iterable<MessageHandler>, raw: string, channel: string, log: FastifyBaseLogger | undefined): void {
  if (raw.charCodeAt(0) !== ENVELOPE) {
    callHandlers(handlers, raw, undefined, log)
    return
  }
  const i = raw.indexOf(' ', 1)
  if (i === 1) {
    callHandlers(handlers, raw.slice(2), undefined, log)
    return
  }
  const j = raw.indexOf(' ', i + 1)
  const offset = Number(raw.slice(1, i))
  if (i < 0 || j < 0 || !Number.isSafeInteger(offset)) {
    log?.error({ channel }, 'fastify-realtime: dropped a malformed history envelope from Redis')
    return
  }
  callHandlers(handlers, raw.slice(j + 1), { offset, epoch: raw.slice(i + 1, j) }, log)
}
