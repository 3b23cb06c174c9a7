/**
 * The client's per-channel stream positions (protocol v1.2, channels with history): the last `{ offset, epoch }`
 * seen of each channel, learnt from `joined`, from each delivery carrying `offset` and from `reset`. It gives the
 * `since` of a re-join, drops deliveries already seen (offset at or below the position), and tells whether a
 * `joined` kept continuity. Channels without history never get a position here and are not affected.
 */
import type { JoinedFrame, ResetFrame } from '../protocol.js'
import type { StreamPosition } from './types.js'

/** What a `joined` meant for a channel's continuity. */
export interface JoinOutcome {
  /** The stream position the server gave (`undefined` for a channel without history). */
  position: StreamPosition | undefined
  /**
   * true: every message after the position held before this join follows or was already seen; false: messages
   * may be missing (a new epoch, or the server could not replay them); `undefined`: no position was held before
   * (a first join) or the channel has no history.
   */
  recovered: boolean | undefined
}

/** Positions by channel. All methods are synchronous and allocate nothing on the delivery path. */
export class PositionBook {
  readonly #positions = new Map<string, { offset: number, epoch: string }>()

  /** The position to re-join `channel` from (a copy), or `undefined` when none is held. */
  since (channel: string): StreamPosition | undefined {
    const held = this.#positions.get(channel)
    return held === undefined ? undefined : { offset: held.offset, epoch: held.epoch }
  }

  /**
   * Takes in a `joined` of `channel`. With `recovered: true` the held offset stays where it is: the replayed
   * messages (up to `frame.offset`) advance it one by one. With `recovered: false` (or a first join) the position
   * becomes the frame's. A `joined` without `recovered` (an unsolicited join by the server, or the answer to a join
   * of a channel already joined) keeps continuity when its epoch is the held one and its offset is not beyond it.
   */
  joined (frame: JoinedFrame): JoinOutcome {
    const { channel, epoch, offset } = frame
    // A channel without history. A held position is kept: deliveries without offset pass anyway, and a server
    // that answers a repeated join plainly (before v1.2's fix) must not make the client forget it.
    if (epoch === undefined || offset === undefined) return { position: undefined, recovered: undefined }
    const held = this.#positions.get(channel)
    let recovered = frame.recovered
    if (recovered === undefined && held !== undefined) recovered = held.epoch === epoch && offset <= held.offset
    if (recovered === true && held !== undefined && held.epoch === epoch) return { position: { offset, epoch }, recovered }
    this.#positions.set(channel, { offset, epoch })
    return { position: { offset, epoch }, recovered }
  }

  /**
   * A delivery of `channel` with `offset`: true when it is new (the position advances to it, before any handler
   * runs), false when it was seen already (offset at or below the position: drop it). Deliveries of a channel
   * without a position, or without an offset, are always new.
   */
  accept (channel: string | undefined, offset: number | undefined): boolean {
    if (channel === undefined || offset === undefined) return true
    const held = this.#positions.get(channel)
    if (held === undefined) return true
    if (offset <= held.offset) return false
    held.offset = offset
    return true
  }

  /** A `reset`: continuity was lost; the position becomes the frame's. */
  reset (frame: ResetFrame): void {
    this.#positions.set(frame.channel, { offset: frame.offset, epoch: frame.epoch })
  }

  /** Forgets `channel` (left: a later `join()` starts afresh). */
  forget (channel: string): void {
    this.#positions.delete(channel)
  }
}
