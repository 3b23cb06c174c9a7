/**
 * Presence of the in-memory adapter: who is in each topic of this process.
 */
import { FST_REALTIME_ADAPTER_CLOSED } from '../errors.js'
import type { FastifyBaseLogger } from 'fastify'
import type { PresenceCapability, PresenceChange, PresenceListener, PresenceMember } from './presence.js'

interface TopicPresence {
  /** connId -> its device's member. */
  connections: Map<string, PresenceMember>
  /** deviceId -> the member (as its first connection gave it) and its number of connections. */
  devices: Map<string, { member: PresenceMember, count: number }>
}

/** The memory presence plus its cleanup, called first by the adapter's `close()`. */
export interface MemoryPresence extends PresenceCapability {
  close: () => void
}

/** A member as stored and returned: `info` only when given. */
function copy (member: PresenceMember): PresenceMember {
  return member.info === undefined ? { deviceId: member.deviceId } : { deviceId: member.deviceId, info: member.info }
}

/** Creates the presence capability of `memoryAdapter()`: maps per topic, one member per deviceId. */
export function memoryPresence (closed: () => boolean, log: () => FastifyBaseLogger | undefined): MemoryPresence {
  const topics = new Map<string, TopicPresence>()
  let listener: PresenceListener | undefined

  function remove (topic: string, connId: string): PresenceChange {
    const change: PresenceChange = { joins: [], leaves: [] }
    const entry = topics.get(topic)
    const member = entry?.connections.get(connId)
    if (entry === undefined || member === undefined) return change
    entry.connections.delete(connId)
    const device = entry.devices.get(member.deviceId)!
    if (--device.count === 0) {
      entry.devices.delete(member.deviceId)
      change.leaves.push(device.member)
    }
    if (entry.connections.size === 0) topics.delete(topic)
    return change
  }

  return {
    async add (topic, connId, member) {
      if (closed()) throw new FST_REALTIME_ADAPTER_CLOSED()
      const change: PresenceChange = { joins: [], leaves: [] }
      let entry = topics.get(topic)
      if (entry === undefined) {
        entry = { connections: new Map(), devices: new Map() }
        topics.set(topic, entry)
      }
      if (entry.connections.has(connId)) return change // already recorded: a connId belongs to one device
      const stored = copy(member)
      entry.connections.set(connId, stored)
      const device = entry.devices.get(member.deviceId)
      if (device === undefined) {
        entry.devices.set(member.deviceId, { member: stored, count: 1 })
        change.joins.push(stored)
      } else {
        device.count++
      }
      return change
    },
    async remove (topic, connId) {
      return remove(topic, connId)
    },
    async list (topic) {
      if (closed()) throw new FST_REALTIME_ADAPTER_CLOSED()
      const entry = topics.get(topic)
      return entry === undefined ? [] : [...entry.devices.values()].map((device) => device.member)
    },
    onChange (fn) {
      listener = fn
    },
    close () {
      for (const [topic, entry] of [...topics]) {
        const leaves = [...entry.devices.values()].map((device) => device.member)
        topics.delete(topic)
        if (leaves.length === 0 || listener === undefined) continue
        try {
          listener(topic, { joins: [], leaves })
        } catch (err) {
          log()?.error({ err, topic }, 'fastify-realtime: presence listener threw')
        }
      }
    }
  }
}
