/**
 * Per-node counters shown by `app.realtime.stats()`, and the in-flight publish tracker that lets shutdown
 * acknowledge every action already handed to the adapter before sending 1001.
 */

/** Event counters of one node since it started. */
export interface Counters {
  /** Connections closed with 1013 because their unsent data passed `maxBufferedBytes` (policy `'close'`). */
  slowConsumersClosed: number
  /** Deliveries skipped for connections over `maxBufferedBytes` (policy `'drop'`). */
  deliveriesDropped: number
  /** Frames answered `RATE_LIMITED`. */
  framesRateLimited: number
  /** Connections closed with 1008 for sending more than twice the rate limit in one window. */
  floodsClosed: number
  /**
   * Messages compressed for permessage-deflate members (option `perMessageDeflate`): once per delivered message and
   * window size on this node, whatever the number of such members, plus once per large frame sent to one socket.
   */
  framesDeflated: number
}

/** Fresh event counters, all zero: one set per plugin instance, read by `stats()` and the metrics at scrape time. */
export function createCounters (): Counters {
  return { slowConsumersClosed: 0, deliveriesDropped: 0, framesRateLimited: 0, floodsClosed: 0, framesDeflated: 0 }
}

/** Counts publishes handed to the adapter and not yet settled. */
export class Inflight {
  #count = 0
  #drained: (() => void) | undefined

  get count (): number {
    return this.#count
  }

  start (): void {
    this.#count++
  }

  end (): void {
    if (--this.#count === 0 && this.#drained !== undefined) this.#drained()
  }

  /** Resolves when no publish is in flight, or after `timeout` ms, whichever comes first. */
  async drained (timeout: number): Promise<void> {
    if (this.#count === 0) return
    let timer: NodeJS.Timeout | undefined
    await new Promise<void>((resolve) => {
      this.#drained = resolve
      timer = setTimeout(resolve, timeout)
    })
    clearTimeout(timer)
    this.#drained = undefined
  }
}
