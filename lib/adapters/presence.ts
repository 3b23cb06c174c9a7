/**
 * The optional presence capability of an adapter: who is in a topic, across nodes, one member per deviceId
 * however many connections it has (Phoenix's metas, Pusher's user ids).
 */

/** One member of a topic: a device with at least one connection in it. */
export interface PresenceMember {
  deviceId: string
  /** Public information about the device (what `authenticate` returned as `presenceInfo`). JSON-serialisable. */
  info?: unknown
}

/**
 * Devices whose first connection entered (`joins`) or whose last connection left (`leaves`) a topic, counted
 * across every node. A second connection of a device already present is neither.
 */
export interface PresenceChange {
  joins: PresenceMember[]
  leaves: PresenceMember[]
}

/** Receives a change of `topic` that no `add`/`remove` call of this adapter instance returned. Must not throw. */
export type PresenceListener = (topic: string, change: PresenceChange) => void

/**
 * Presence across nodes. An adapter that has it exposes it as `adapter.presence`; one without it still works for
 * channels without presence.
 *
 * Guarantees, one per method:
 * - `add` records connection `connId` (unique per node) of `member.deviceId` in `topic` and resolves with the
 *   change it caused across every node (a join when it is the device's first connection there), reported to this
 *   caller only; it rejects with FST_REALTIME_UNAVAILABLE while the backend is unreachable, recording nothing.
 * - `remove` forgets the connection at once locally and resolves with the change it caused (a leave when it was
 *   the device's last connection); it never rejects: a removal the backend missed is made, and its change given
 *   to the listener, when the backend is back.
 * - `list` returns the current members of `topic` on every live node, each device once; it rejects with
 *   FST_REALTIME_UNAVAILABLE while the backend is unreachable.
 * - `onChange` sets the one listener of changes no `add`/`remove` returned: the members of a node that died
 *   without cleaning up, removed within the adapter's bound by one surviving node and reported there only, and the
 *   members this node restores or removes when its backend comes back. Each change reaches one listener once.
 * - `start` (optional) is called once by the plugin at register time when presence is enabled, before any other
 *   method: the node begins to count as live (heartbeat) and to sweep dead nodes.
 * - The adapter's `close()` removes this node's members first, reporting their leaves to the listener, and only
 *   then stops counting as live, so no member of a closed node is left behind.
 */
export interface PresenceCapability {
  start?: () => Promise<void>
  add: (topic: string, connId: string, member: PresenceMember) => Promise<PresenceChange>
  remove: (topic: string, connId: string) => Promise<PresenceChange>
  list: (topic: string) => Promise<PresenceMember[]>
  onChange: (listener: PresenceListener) => void
}
