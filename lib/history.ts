/**
 * Channel history on the plugin side: the `history` option, publishing through the adapter's history capability,
 * recovery on join (`since`: all the missed messages or none, Centrifugo's rule), and `app.realtime.history()`.
 * Node-level continuity of live deliveries is `stream-follower.ts`; holding a joiner's live deliveries while the
 * stream is read is `channels.ts`.
 */
import type { RealtimeAdapter } from './adapters/adapter.js'
import type { HistoryOptions, HistoryPage } from './adapters/history.js'
import { CHANNEL_TOPIC_PREFIX } from './constants.js'
import { decodeEnvelope } from './envelope.js'
import { FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_INVALID_OPTION } from './errors.js'
import { isChannelName } from './protocol.js'

/** How much history a channel keeps: `size` messages, for `ttl` ms after its last publish. */
export interface ChannelHistory {
  /** Most messages kept (integer >= 1). */
  size: number
  /** Time to keep them, in ms since the channel's last publish (integer >= 1). */
  ttl: number
}

/**
 * The `history` plugin option: `false` (default, no channel has history), one `{ size, ttl }` for every channel,
 * or a function of the channel name returning `{ size, ttl }` or `false`. The function must give the same answer
 * for a channel every time, on every node.
 */
export type HistoryOption = false | ChannelHistory | ((channel: string) => ChannelHistory | false)

/** The history of a channel, or `undefined` when it has none. @throws FST_REALTIME_INVALID_OPTION for a bad answer */
export type HistoryOf = (channel: string) => HistoryOptions | undefined

function checked (value: unknown, where: string): HistoryOptions {
  const h = value as ChannelHistory
  if (h === null || typeof h !== 'object' || !Number.isSafeInteger(h.size) || h.size < 1 || !Number.isSafeInteger(h.ttl) || h.ttl < 1) {
    throw new FST_REALTIME_INVALID_OPTION(`${where} must be false or { size, ttl } with integers size >= 1 and ttl >= 1 (ms), got ${JSON.stringify(value)}`)
  }
  return { size: h.size, ttl: h.ttl }
}

/**
 * Validates the `history` option against the adapter. Returns `undefined` when history is off.
 * @throws FST_REALTIME_INVALID_OPTION for a bad value, or when the adapter has no history capability.
 */
export function resolveHistory (option: unknown, adapter: RealtimeAdapter): HistoryOf | undefined {
  if (option === undefined || option === false) return undefined
  if (adapter.history === undefined) {
    throw new FST_REALTIME_INVALID_OPTION('history needs an adapter with the history capability (adapter.history); memoryAdapter() and redisAdapter() have it')
  }
  if (typeof option === 'function') {
    const fn = option as (channel: string) => unknown
    return (channel) => {
      const value = fn(channel)
      return value === false ? undefined : checked(value, `history(${JSON.stringify(channel)})`)
    }
  }
  const fixed = checked(option, 'history')
  return () => fixed
}

/**
 * Publishes a channel's message: through the stream when the channel has history (an offset is assigned and the
 * message stored atomically with its fan-out), else plain pub/sub. Rejects with the adapter's error.
 */
export function publishToChannel (adapter: RealtimeAdapter, historyOf: HistoryOf | undefined, channel: string, message: string): Promise<unknown> {
  const topic = CHANNEL_TOPIC_PREFIX + channel
  const history = historyOf?.(channel)
  return history === undefined ? adapter.publish(topic, message) : adapter.history!.publish(topic, message, history)
}

/** A client's recovery request: its last position in the channel. */
export interface Since {
  offset: number
  epoch: string
}

/**
 * True when `page` (read from `since.offset`) holds every message after it, up to the top: same epoch, and either
 * nothing was missed or the stored messages run without a hole from `since.offset + 1` to the top. A read cut by
 * its limit is not a recovery: never a partial replay.
 */
export function isRecovered (since: Since, page: HistoryPage): boolean {
  if (page.epoch !== since.epoch || since.offset > page.offset) return false
  if (since.offset === page.offset) return true
  const { messages } = page
  return messages.length === page.offset - since.offset && messages[0]!.offset === since.offset + 1 &&
    messages[messages.length - 1]!.offset === page.offset
}

/** The frame text with `"offset":n` as its last member (a frame is a JSON object: it ends with `}`). */
export function withOffset (frame: string, offset: number): string {
  return frame.slice(0, -1) + ',"offset":' + offset + '}'
}

/**
 * The delivery frame of a stored message for a member of `deviceId` (with its offset), or `undefined` when the
 * message excepted that device (or is not a delivery).
 */
export function storedFrame (message: string, offset: number, deviceId: string): string | undefined {
  if (message.charCodeAt(0) === 123) return withOffset(message, offset)
  const envelope = decodeEnvelope(message)
  if (envelope === undefined || envelope.header.c !== undefined || envelope.frame.charCodeAt(0) !== 123) return undefined
  return envelope.header.e === deviceId ? undefined : withOffset(envelope.frame, offset)
}

/** One message of `app.realtime.history()`. */
export interface HistoryMessage {
  offset: number
  action: string
  payload: unknown
  /** The sender's deviceId, or null for a server publish. */
  from: string | null
}

/** What `app.realtime.history()` resolves with. */
export interface ChannelHistoryPage {
  epoch: string
  /** The channel's latest offset (0 for an empty stream). */
  offset: number
  /** Stored messages after `since`, ascending, at most `limit`. */
  messages: HistoryMessage[]
}

/** Default `limit` of `app.realtime.history()`. */
export const DEFAULT_HISTORY_LIMIT = 100

/**
 * `app.realtime.history(channel, { since, limit })`.
 * @throws FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_INVALID_OPTION (history off for the channel, or a bad
 *   since/limit), or the adapter's error (FST_REALTIME_UNAVAILABLE), as rejections.
 */
export async function readHistory (adapter: RealtimeAdapter, historyOf: HistoryOf | undefined, channel: string,
  query: { since?: number, limit?: number } = {}): Promise<ChannelHistoryPage> {
  if (!isChannelName(channel)) throw new FST_REALTIME_INVALID_CHANNEL(String(channel))
  if (historyOf?.(channel) === undefined) throw new FST_REALTIME_INVALID_OPTION(`channel "${channel}" has no history (see the history option)`)
  const since = query.since ?? 0
  const limit = query.limit ?? DEFAULT_HISTORY_LIMIT
  if (!Number.isSafeInteger(since) || since < 0) throw new FST_REALTIME_INVALID_OPTION(`history since must be an integer >= 0, got ${JSON.stringify(query.since)}`)
  if (!Number.isSafeInteger(limit) || limit < 0) throw new FST_REALTIME_INVALID_OPTION(`history limit must be an integer >= 0, got ${JSON.stringify(query.limit)}`)
  const page = await adapter.history!.read(CHANNEL_TOPIC_PREFIX + channel, { since, limit })
  const messages: HistoryMessage[] = []
  for (const entry of page.messages) {
    const text = entry.message.charCodeAt(0) === 123 ? entry.message : decodeEnvelope(entry.message)?.frame
    if (text === undefined || text === '') continue
    const { action, payload, from } = JSON.parse(text) as HistoryMessage
    messages.push({ offset: entry.offset, action, payload, from })
  }
  return { epoch: page.epoch, offset: page.offset, messages }
}
