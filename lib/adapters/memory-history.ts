/**
 * History of the in-memory adapter: one ring buffer per topic, kept in this process only.
 */
import { FST_REALTIME_ADAPTER_CLOSED } from '../errors.js'
import { newEpoch, type HistoryCapability, type HistoryEntry, type HistoryOptions, type StreamPosition } from './history.js'

/** How often expired streams and positions are dropped from memory, in ms. Reads check expiry themselves. */
const SWEEP_INTERVAL = 10_000

interface Stream {
  epoch: string
  /** Offset of the newest message; 0 before the first one. */
  offset: number
  /** Ring buffer of the newest `count` entries, the oldest at `head`. */
  ring: Array<HistoryEntry | undefined>
  head: number
  count: number
  /** When the entries expire (ms since epoch): `ttl` after the last publish. */
  expiresAt: number
  /** When the position itself is forgotten (ms since epoch): `metaTtl` after the last publish or read. */
  metaExpiresAt: number
}

/** What the memory history needs from its adapter. */
export interface MemoryHistoryHost {
  closed: () => boolean
  deliver: (topic: string, message: string, position: StreamPosition) => void
}

/** The memory history plus its cleanup, called by the adapter's `close()`. */
export interface MemoryHistory extends HistoryCapability {
  close: () => void
}

/**
 * Creates the history capability of `memoryAdapter()`. Each stream gets a random epoch when it is created, so a
 * new process (or a stream forgotten after `metaTtl` ms without activity) can never reuse a position.
 */
export function memoryHistory (host: MemoryHistoryHost, metaTtl: number): MemoryHistory {
  const streams = new Map<string, Stream>()
  let sweeper: NodeJS.Timeout | undefined

  function sweep (): void {
    const now = Date.now()
    for (const [topic, stream] of streams) {
      if (now >= stream.metaExpiresAt) streams.delete(topic)
      else if (now >= stream.expiresAt) clear(stream)
    }
  }

  function clear (stream: Stream): void {
    stream.ring = []
    stream.head = 0
    stream.count = 0
  }

  /** The topic's stream, created (new epoch, offset 0) when missing; expired entries dropped. */
  function streamOf (topic: string, now: number): Stream {
    let stream = streams.get(topic)
    if (stream !== undefined && now >= stream.metaExpiresAt) stream = undefined
    if (stream === undefined) {
      stream = { epoch: newEpoch(), offset: 0, ring: [], head: 0, count: 0, expiresAt: 0, metaExpiresAt: 0 }
      streams.set(topic, stream)
      sweeper ??= setInterval(sweep, SWEEP_INTERVAL).unref()
    } else if (now >= stream.expiresAt) {
      clear(stream)
    }
    stream.metaExpiresAt = now + metaTtl
    return stream
  }

  function append (stream: Stream, entry: HistoryEntry, size: number): void {
    if (stream.ring.length !== size) {
      // First publish, or the size changed: rebuild the ring with the newest entries that fit.
      const all = entries(stream, 0, Infinity)
      const kept = all.slice(Math.max(0, all.length - (size - 1)))
      stream.ring = new Array<HistoryEntry | undefined>(size)
      for (let i = 0; i < kept.length; i++) stream.ring[i] = kept[i]
      stream.head = 0
      stream.count = kept.length
    }
    if (stream.count < size) {
      stream.ring[(stream.head + stream.count) % size] = entry
      stream.count++
    } else {
      stream.ring[stream.head] = entry
      stream.head = (stream.head + 1) % size
    }
  }

  /** Stored entries with offset > since, ascending, at most limit. */
  function entries (stream: Stream, since: number, limit: number): HistoryEntry[] {
    const out: HistoryEntry[] = []
    const size = stream.ring.length
    for (let i = 0; i < stream.count && out.length < limit; i++) {
      const entry = stream.ring[(stream.head + i) % size]!
      if (entry.offset > since) out.push(entry)
    }
    return out
  }

  return {
    async publish (topic, message, options: HistoryOptions) {
      if (host.closed()) throw new FST_REALTIME_ADAPTER_CLOSED()
      const now = Date.now()
      const stream = streamOf(topic, now)
      const offset = ++stream.offset
      append(stream, { offset, message }, options.size)
      stream.expiresAt = now + options.ttl
      const position = { offset, epoch: stream.epoch }
      host.deliver(topic, message, position)
      return { offset, epoch: stream.epoch }
    },
    async read (topic, query) {
      if (host.closed()) throw new FST_REALTIME_ADAPTER_CLOSED()
      const stream = streamOf(topic, Date.now())
      const messages = query.limit > 0 ? entries(stream, query.since ?? 0, query.limit) : []
      return { epoch: stream.epoch, offset: stream.offset, messages }
    },
    close () {
      clearInterval(sweeper)
      streams.clear()
    }
  }
}
