/**
 * Continuity of one history channel on one node: live deliveries come from pub/sub, which can lose or repeat a
 * message (a Redis blip, a resubscription); each carries its position, so the node knows. The follower passes on
 * each offset once and in order, fills a gap from the stream, and when it cannot (the messages were trimmed or
 * expired, the epoch changed, the stream is unreachable) reports a reset: continuity lost, reload.
 * Centrifugo does the same per connection (`client.go` writePublication); here it is once per node and channel.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { HistoryPage, StreamPosition } from './adapters/history.js'

/** Most messages read from the stream per round while filling a gap or catching up. */
const FILL_PAGE = 500

/** What a follower drives. None of these may throw. */
export interface FollowerSink {
  /** Reads the stream: messages after `since`, at most `limit`, with the current top position. */
  read: (since: number, limit: number) => Promise<HistoryPage>
  /** Passes on one message with its offset: every offset once, ascending, contiguous between resets. */
  emit: (message: string, offset: number) => void
  /** Continuity was lost: the next message emitted will be `offset + 1` of `epoch`. */
  reset: (epoch: string, offset: number) => void
}

export class StreamFollower {
  /** The last position passed on; undefined until the first message or `seed()`. */
  #position: StreamPosition | undefined
  /** Live messages held while the stream is read (gap fill or catch-up); undefined when not reading. */
  #pending: Array<[string, StreamPosition]> | undefined
  readonly #sink: FollowerSink
  readonly #log: FastifyBaseLogger
  readonly #channel: string

  constructor (channel: string, sink: FollowerSink, log: FastifyBaseLogger) {
    this.#channel = channel
    this.#sink = sink
    this.#log = log
  }

  /** The last position passed on, if any. */
  get position (): StreamPosition | undefined {
    return this.#position
  }

  /** True while the follower reads the stream (live messages are held meanwhile). */
  get syncing (): boolean {
    return this.#pending !== undefined
  }

  /** Starts from `position` (a stream top just read) when the follower has none yet. */
  seed (position: StreamPosition): void {
    if (this.#position === undefined && this.#pending === undefined) this.#position = { offset: position.offset, epoch: position.epoch }
  }

  /** A live delivery from the adapter. */
  accept (message: string, position: StreamPosition): void {
    if (this.#pending !== undefined) {
      this.#pending.push([message, position])
      return
    }
    const last = this.#position
    if (last === undefined || (position.epoch === last.epoch && position.offset === last.offset + 1)) {
      this.#position = position
      this.#sink.emit(message, position.offset)
      return
    }
    if (position.epoch === last.epoch && position.offset <= last.offset) return // a late duplicate
    this.#pending = [[message, position]]
    this.#sync()
  }

  /** Reads the stream from the last position up to its top (after the adapter reconnected). */
  catchUp (): void {
    if (this.#pending !== undefined || this.#position === undefined) return
    this.#pending = []
    this.#sync()
  }

  /** Reads from the last position to the top, then passes on the held live messages; repeats on a new gap. */
  #sync (): void {
    const from = this.#position!.offset
    this.#fill().then(() => this.#drain(this.#position!.offset === from), (err: unknown) => {
      // Unreadable: say so, and carry on from the first held message.
      this.#log.warn({ err, channel: this.#channel }, 'fastify-realtime: cannot read the stream to fill a gap; members get a reset')
      const first = this.#pending?.[0]
      if (first !== undefined) this.#reset(first[1].epoch, first[1].offset - 1)
      this.#drain(false)
    })
  }

  async #fill (): Promise<void> {
    for (;;) {
      const last = this.#position!
      const page = await this.#sink.read(last.offset, FILL_PAGE)
      const first = page.messages[0]
      const continuous = page.epoch === last.epoch && page.offset >= last.offset &&
        (page.offset === last.offset || first?.offset === last.offset + 1)
      if (!continuous) {
        this.#reset(page.epoch, page.offset)
        return
      }
      for (const entry of page.messages) {
        if (entry.offset !== this.#position!.offset + 1) continue // only contiguous ones (the read is ordered)
        this.#position = { offset: entry.offset, epoch: page.epoch }
        this.#sink.emit(entry.message, entry.offset)
      }
      if (this.#position!.offset >= page.offset || page.messages.length === 0) return
    }
  }

  #reset (epoch: string, offset: number): void {
    this.#position = { epoch, offset }
    this.#sink.reset(epoch, offset)
  }

  /**
   * Passes on the held messages (pub/sub keeps their order); a new gap among them starts another read, unless the
   * read just done brought nothing (`stuck`: the stream does not hold what pub/sub delivered), then it is a reset
   * to just before that message, never a loop of reads. One of another epoch than the stream's, just read, is
   * stale (published before a reset) and dropped.
   */
  #drain (stuck: boolean): void {
    const pending = this.#pending ?? []
    this.#pending = undefined
    for (let i = 0; i < pending.length; i++) {
      const [message, position] = pending[i]!
      const held = this.#pending as Array<[string, StreamPosition]> | undefined // accept() may start a read
      if (held !== undefined) {
        held.push([message, position])
      } else if (position.epoch === this.#position?.epoch) {
        if (stuck && position.offset > this.#position.offset + 1) this.#reset(position.epoch, position.offset - 1)
        this.accept(message, position)
      }
    }
  }
}
