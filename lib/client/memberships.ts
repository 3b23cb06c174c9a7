/**
 * The client's channels across reconnects: which are joined (kept while disconnected, re-joined on the next
 * connection), which the server confirmed on the current connection, and per channel the stream position
 * (recovery.ts) and the members online (presence.ts). It turns the frames about channels (`joined`, `left`,
 * `reset`, `presence`, `presence_diff`) into replies to pending requests and events; it sends nothing.
 */
import type { JoinedFrame, LeftFrame, PresenceDiffFrame, PresenceFrame, ResetFrame } from '../protocol.js'
import { PositionBook } from './recovery.js'
import { PresenceBook } from './presence.js'
import type { JoinResult, MembershipDetail, RealtimeClientEventMap } from './types.js'

/** The event a `joined` frame fires, if any. */
export type JoinedEvent =
  | { type: 'joined', detail: MembershipDetail }
  | { type: 'rejoined', detail: JoinResult }
  | undefined

/** The frames about a channel's membership, position or presence. */
export type ChannelFrame = JoinedFrame | LeftFrame | ResetFrame | PresenceFrame | PresenceDiffFrame

/** Where `Memberships.frame` reports. Called synchronously. */
export interface MembershipSink {
  /** Settles the pending request `id` (if any) with `result`. */
  reply: (id: unknown, result?: unknown) => void
  /** Fires a client event. */
  emit: <K extends keyof RealtimeClientEventMap>(type: K, detail: RealtimeClientEventMap[K]['detail']) => void
}

/** Channel membership, positions and presence of one client. */
export class Memberships {
  /** The channels joined: by `join()` or by the server; kept while disconnected. */
  readonly channels = new Set<string>()
  /** Stream positions of channels with history. */
  readonly positions = new PositionBook()
  /** Members of presence channels. */
  readonly presence = new PresenceBook()
  /** Channels the server confirmed (`joined`) on the current connection: a refused re-join does not drop them. */
  readonly #confirmed = new Set<string>()

  /** A new connection was welcomed: nothing is confirmed on it yet. */
  welcomed (): void {
    this.#confirmed.clear()
  }

  /** The connection dropped: presence lists wait for the snapshots of the re-joins. */
  disconnected (): void {
    this.presence.disconnected()
  }

  /** True when the server confirmed `channel` on the current connection. */
  confirmed (channel: string): boolean {
    return this.#confirmed.has(channel)
  }

  /**
   * Takes in a frame about a channel: `joined` (replies with a `JoinResult`, fires `joined` or `rejoined`), `left`
   * (fires `left` when the channel was in `channels`), `reset` (moves the position, fires `reset`), `presence` and
   * `presence_diff` (fire `presence` when the members changed).
   */
  frame (frame: ChannelFrame, sink: MembershipSink): void {
    switch (frame.type) {
      case 'joined': {
        const { result, event } = this.joined(frame)
        sink.reply(frame.id, result)
        if (event?.type === 'joined') sink.emit('joined', event.detail)
        else if (event?.type === 'rejoined') sink.emit('rejoined', event.detail)
        return
      }
      case 'left': {
        const removed = this.left(frame.channel)
        sink.reply(frame.id)
        if (removed) sink.emit('left', { channel: frame.channel, byServer: frame.id === undefined })
        return
      }
      case 'reset':
        this.positions.reset(frame)
        sink.emit('reset', { channel: frame.channel, epoch: frame.epoch, offset: frame.offset })
        return
      case 'presence':
        sink.emit('presence', this.presence.snapshot(frame))
        return
      case 'presence_diff': {
        const detail = this.presence.diff(frame)
        if (detail !== undefined) sink.emit('presence', detail)
      }
    }
  }

  /**
   * Takes in a `joined` frame: the result for the `join()` it answers, and the event to fire: `joined` when the
   * channel is new to `channels`, `rejoined` for its first confirmation on a new connection (after a reconnect),
   * none for a repeated confirmation.
   */
  joined (frame: JoinedFrame): { result: JoinResult, event: JoinedEvent } {
    const { channel } = frame
    const { position, recovered } = this.positions.joined(frame)
    const result: JoinResult = { channel }
    if (position !== undefined) {
      result.epoch = position.epoch
      result.offset = position.offset
    }
    if (recovered !== undefined) result.recovered = recovered
    const added = !this.channels.has(channel)
    const first = !this.#confirmed.has(channel)
    this.channels.add(channel)
    this.#confirmed.add(channel)
    if (added) return { result, event: { type: 'joined', detail: { channel, byServer: frame.id === undefined } } }
    return { result, event: first ? { type: 'rejoined', detail: { ...result } } : undefined }
  }

  /** `channel` was left (a `left` frame, or a refused re-join): true when it was in `channels`. */
  left (channel: string): boolean {
    this.#confirmed.delete(channel)
    this.positions.forget(channel)
    this.presence.forget(channel)
    return this.channels.delete(channel)
  }
}
