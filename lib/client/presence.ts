/**
 * Who is online in each presence channel (protocol v1.2 section 9), as the client knows it: the snapshot the server
 * sends after every `joined`, then the diffs applied on top (a join of a present member and a leave of an absent
 * one change nothing). A snapshot after a re-join replaces the list; what changed meanwhile is reported as joins and
 * leaves against the previous list.
 */
import type { PresenceDiffFrame, PresenceFrame, PresenceMemberFrame } from '../protocol.js'
import type { PresenceDetail, PresenceMember } from './types.js'

/** Members by channel, each a map deviceId -> member in arrival order. */
export class PresenceBook {
  readonly #channels = new Map<string, Map<string, PresenceMember>>()
  /** Channels whose list is stale (the connection dropped): diffs wait for the next snapshot. */
  readonly #stale = new Set<string>()

  /** The members of `channel` (a copy), or `undefined` when no snapshot was received for it. */
  members (channel: string): PresenceMember[] | undefined {
    const members = this.#channels.get(channel)
    return members === undefined ? undefined : [...members.values()].map(copy)
  }

  /** Takes in a snapshot; returns the event detail (joins and leaves against the previous list, if any). */
  snapshot (frame: PresenceFrame): PresenceDetail {
    const previous = this.#channels.get(frame.channel) ?? new Map<string, PresenceMember>()
    const next = new Map<string, PresenceMember>()
    for (const member of frame.members) next.set(member.deviceId, copy(member))
    this.#channels.set(frame.channel, next)
    this.#stale.delete(frame.channel)
    const joins = [...next.values()].filter((m) => !previous.has(m.deviceId)).map(copy)
    const leaves = [...previous.values()].filter((m) => !next.has(m.deviceId)).map(copy)
    return { channel: frame.channel, members: [...next.values()].map(copy), joins, leaves, snapshot: true }
  }

  /**
   * Applies a diff; returns the event detail with the joins and leaves that changed the list, or `undefined` when
   * nothing changed (or no snapshot of the channel was received on this connection yet: the snapshot
   * will be the truth).
   */
  diff (frame: PresenceDiffFrame): PresenceDetail | undefined {
    const members = this.#channels.get(frame.channel)
    if (members === undefined || this.#stale.has(frame.channel)) return undefined
    const joins: PresenceMember[] = []
    const leaves: PresenceMember[] = []
    for (const member of frame.leaves) {
      const present = members.get(member.deviceId)
      if (present === undefined) continue
      members.delete(member.deviceId)
      leaves.push(copy(present))
    }
    for (const member of frame.joins) {
      if (members.has(member.deviceId)) continue
      members.set(member.deviceId, copy(member))
      joins.push(copy(member))
    }
    if (joins.length === 0 && leaves.length === 0) return undefined
    return { channel: frame.channel, members: [...members.values()].map(copy), joins, leaves, snapshot: false }
  }

  /** The connection dropped: every list is kept (and still readable) until the snapshot of the re-join. */
  disconnected (): void {
    for (const channel of this.#channels.keys()) this.#stale.add(channel)
  }

  /** Forgets `channel` (left). */
  forget (channel: string): void {
    this.#channels.delete(channel)
    this.#stale.delete(channel)
  }
}

function copy (member: PresenceMemberFrame): PresenceMember {
  return member.info === undefined ? { deviceId: member.deviceId } : { deviceId: member.deviceId, info: member.info }
}
