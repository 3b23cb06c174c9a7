/**
 * The optional history capability of an adapter: per-topic streams of messages with offsets and an epoch, so a
 * client that comes back can be told exactly what it missed, or that continuity was lost. The model is
 * Centrifugo's (centrifugal/centrifuge `broker.go`): a stream position is `{ offset, epoch }`.
 */
import { randomBytes } from 'node:crypto'

/**
 * A position in a topic's stream. `offset` is an integer, 1 for the first message of an epoch and +1 per
 * message, the same on every node (0 names the position before the first message). `epoch` names one
 * incarnation of the stream: when the stored stream is lost (restart without persistence, eviction, expiry of
 * its metadata) it starts again at offset 1 under a new epoch, so an old position can never be mistaken for a
 * new one.
 */
export interface StreamPosition {
  offset: number
  epoch: string
}

/** How much of a topic's stream is kept. Validated by the plugin; adapters may assume both are integers >= 1. */
export interface HistoryOptions {
  /** Most messages kept; older ones are trimmed on each publish. */
  size: number
  /** Time to keep the stream, in ms since its last publish; the position (epoch and offset) outlives it. */
  ttl: number
}

/** One stored message. */
export interface HistoryEntry {
  offset: number
  message: string
}

/** What `history.read()` returns: the stream's latest position and the stored messages asked for. */
export interface HistoryPage extends StreamPosition {
  /** Stored messages with an offset above `since`, ascending, at most `limit`. */
  messages: HistoryEntry[]
}

/** Parameters of `history.read()`. */
export interface HistoryQuery {
  /** Exclusive lower bound: only messages with a greater offset. Default 0 (from the oldest stored). */
  since?: number
  /** Most messages returned, >= 0; 0 returns only the position. */
  limit: number
}

/**
 * Per-topic message history. An adapter that has it exposes it as `adapter.history`; one without it still
 * works for channels without history.
 *
 * Guarantees, one per method:
 * - `publish` assigns the topic's next offset, stores the message and fans it out to every subscriber on every
 *   node in one atomic step, so a subscriber never sees a message the stream lacks, nor the reverse; subscribers
 *   get it with its position (the handler's second argument), in offset order. It rejects like the core
 *   `publish` (FST_REALTIME_UNAVAILABLE while the backend is unreachable, FST_REALTIME_ADAPTER_CLOSED after
 *   `close()`), and then nothing was stored or delivered.
 * - `read` returns the stream's latest position and the stored messages after `since`; on a topic that never had
 *   a message (or lost its stream) it fixes the epoch that the next `publish` will use, so a position read before
 *   the first message stays valid. It rejects like `publish`.
 * - `start` (optional) is called once by the plugin at register time when history is enabled, before any other
 *   method of the capability: the place for startup checks of the backend's settings.
 * - `onReconnect` (optional; an adapter whose subscriptions never miss a message needs none) sets the one listener
 *   called after the adapter subscribed again following a backend outage, once per outage: messages published
 *   meanwhile may not have reached this node's handlers, so the plugin catches up from the streams.
 */
export interface HistoryCapability {
  start?: () => Promise<void>
  onReconnect?: (listener: () => void) => void
  publish: (topic: string, message: string, options: HistoryOptions) => Promise<StreamPosition>
  read: (topic: string, query: HistoryQuery) => Promise<HistoryPage>
}

/** A new random epoch: 12 characters of base64url (72 bits), never containing a space. */
export function newEpoch (): string {
  return randomBytes(9).toString('base64url')
}
