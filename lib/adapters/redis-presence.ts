/**
 * Presence of the Redis adapter, O(nodes) in Redis traffic: members are written on join and leave only, and each
 * node proves it is alive with one heartbeat (a score in a sorted set, Redis' own clock) every fifth of
 * `presenceTimeout`. A node without a heartbeat for three fifths of it is dead: the first live node to see that
 * removes its members (one idempotent script per topic) and reports their leaves, so a crashed node's members are
 * gone within `presenceTimeout`.
 *
 * Keys (prefix `p`): `p{topic}:p:<node>` hash connId -> deviceId (this node's connections), `p{topic}:pc` hash
 * deviceId -> connections on every node, `p{topic}:pm` hash deviceId -> member JSON; per node a set
 * `p presence:node:<node>` of its topics; `p presence:nodes` sorted set node -> last heartbeat (ms).
 * A topic's keys share the hash tag `{topic}`; the per-node keys are written by separate commands. On a Redis
 * Cluster every command and script touches one slot only (a topic's keys, one per-node key, or the nodes set), is
 * routed by it to its master, and answers FST_REALTIME_UNAVAILABLE while that shard is down (`RedisHost.run`).
 */
import { randomBytes } from 'node:crypto'
import { FST_REALTIME_ADAPTER_CLOSED, FST_REALTIME_UNAVAILABLE } from '../errors.js'
import type { PresenceCapability, PresenceChange, PresenceListener, PresenceMember } from './presence.js'
import type { RedisCommands, RedisHost } from './redis-host.js'
import { presenceCommands as commands, type PresenceCommands } from './redis-presence-scripts.js'

/** True for an error of fastify-realtime's catalogue (already a clear answer). */
function isOurs (err: unknown): boolean {
  return typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('FST_REALTIME_')
}

function parseChange (reply: [string[], string[]]): PresenceChange {
  return { joins: reply[0].map(parseMember), leaves: reply[1].map(parseMember) }
}

function parseMember (json: string): PresenceMember {
  return JSON.parse(json) as PresenceMember
}

/** The Redis presence plus what the adapter calls at close. */
export interface RedisPresence extends PresenceCapability {
  /** Removes this node's members (leaves to the listener), then its heartbeat entry. Never rejects. */
  close: () => Promise<void>
  /** This node's id in Redis. */
  readonly nodeId: string
  /**
   * Redis may have lost writes of this node (a cluster shard failed over: replication is asynchronous): bring it
   * back to this node's local members at the next heartbeat, as after a failed write.
   */
  invalidate: () => void
}

/**
 * Creates the presence capability of `redisAdapter()`. `timeout` (ms) bounds how long a dead node's members stay.
 * This node's own members are kept locally too: they are the truth that Redis is brought back to (a "replace")
 * after any failed write, and after this node was taken for dead (e.g. a network partition longer than the bound).
 */
export function redisPresence (host: RedisHost, timeout: number): RedisPresence {
  const nodeId = randomBytes(9).toString('base64url')
  const nodesKey = `${host.prefix}presence:nodes`
  const nodeTopicsKey = (node: string): string => `${host.prefix}presence:node:${node}`
  const keys = (topic: string, node: string): [string, string, string] => {
    const base = host.channel(topic)
    return [`${base}:p:${node}`, `${base}:pc`, `${base}:pm`]
  }
  const interval = Math.max(1, Math.round(timeout / 5))
  const deadAfter = Math.max(1, Math.round(timeout * 3 / 5))
  /** topic -> connId -> [deviceId, member JSON]: this node's members. */
  const local = new Map<string, Map<string, [string, string]>>()
  let listener: PresenceListener | undefined
  let timer: NodeJS.Timeout | undefined
  let beating: Promise<void> | undefined
  let starting: Promise<void> | undefined
  /** A write failed, or may have: bring Redis back to `local` at the next heartbeat. */
  let dirty = false
  let stopped = false

  function notify (topic: string, change: PresenceChange): void {
    if (listener === undefined || (change.joins.length === 0 && change.leaves.length === 0)) return
    try {
      listener(topic, change)
    } catch (err) {
      host.log()?.error({ err, topic }, 'fastify-realtime: presence listener threw')
    }
  }

  /** Runs `command` on the connection serving `key` (its shard's master on a cluster), with the scripts defined. */
  async function run<T> (key: string, command: (c: RedisCommands & PresenceCommands) => Promise<T>): Promise<T> {
    return await host.run(key, async (client) => await command(commands(client)))
  }

  /** Updates `node`'s membership of `topic` (`args`: see UPDATE); returns the change. */
  async function update (topic: string, node: string, ...args: string[]): Promise<PresenceChange> {
    const [conns, counts, members] = keys(topic, node)
    return parseChange(await run(conns, (c) => c.realtimePresenceUpdate(conns, counts, members, ...args)))
  }

  /** Rewrites `node`'s membership of `topic` to `members` (none: it leaves the topic); returns the change. */
  async function replace (topic: string, node: string, members: Iterable<[string, [string, string]]>): Promise<PresenceChange> {
    const args: string[] = []
    for (const [connId, [deviceId, json]] of members) args.push(connId, deviceId, json)
    return await update(topic, node, 'replace', ...args)
  }

  /** Brings Redis back to this node's local members, for every topic it holds or may still hold there. */
  async function resync (): Promise<void> {
    const own = nodeTopicsKey(nodeId)
    const topics = new Set([...local.keys(), ...await run(own, (c) => c.smembers(own))])
    for (const topic of topics) {
      const members = local.get(topic)
      if (members !== undefined) await run(own, (c) => c.sadd(own, topic))
      notify(topic, await replace(topic, nodeId, members ?? []))
      if (members === undefined && !local.has(topic)) await run(own, (c) => c.srem(own, topic))
    }
  }

  /** Removes the members of a dead node, reporting their leaves here. Idempotent: concurrent sweepers split them. */
  async function sweep (node: string): Promise<void> {
    const its = nodeTopicsKey(node)
    for (const topic of await run(its, (c) => c.smembers(its))) {
      notify(topic, await replace(topic, node, []))
    }
    await run(its, (c) => c.del(its))
    await run(nodesKey, (c) => c.zrem(nodesKey, node))
    host.log()?.info({ node }, 'fastify-realtime: removed the presence of a node without heartbeat')
  }

  async function beat (): Promise<void> {
    const [added, dead] = await run(nodesKey, (c) => c.realtimePresenceHeartbeat(nodesKey, nodeId, deadAfter))
    if (Number(added) === 1 || dirty) {
      dirty = false
      await resync().catch((err: unknown) => { dirty = true; throw err })
    }
    for (const node of dead) if (node !== nodeId) await sweep(node)
  }

  function schedule (): void {
    if (stopped) return
    timer = setTimeout(() => {
      beating = beat().catch((err: unknown) => {
        dirty = true
        host.log()?.debug({ err }, 'fastify-realtime: presence heartbeat failed')
      }).finally(schedule)
    }, interval).unref()
  }

  async function start (): Promise<void> {
    starting ??= beat().then(schedule, (err: unknown) => {
      starting = undefined // the next add() tries again
      throw isOurs(err) ? err : new FST_REALTIME_UNAVAILABLE((err as Error).message)
    })
    return starting
  }

  return {
    nodeId,
    start,
    invalidate () { dirty = true },

    async add (topic, connId, member) {
      if (host.closed() || stopped) throw new FST_REALTIME_ADAPTER_CLOSED()
      await start()
      const json = JSON.stringify(member.info === undefined ? { deviceId: member.deviceId } : { deviceId: member.deviceId, info: member.info })
      let members = local.get(topic)
      if (members === undefined) {
        members = new Map()
        local.set(topic, members)
      }
      members.set(connId, [member.deviceId, json])
      const own = nodeTopicsKey(nodeId)
      try {
        // The topic is registered before the member is written, so a sweep after a crash finds it. On one Redis
        // both go on one connection, in this order; on a cluster they go to different shards: wait for the first.
        const registered = run(own, (c) => c.sadd(own, topic))
        if (host.cluster) await registered
        const change = update(topic, nodeId, 'add', connId, member.deviceId, json)
        return (await Promise.all([registered, change]))[1]
      } catch (err) {
        members.delete(connId)
        if (members.size === 0 && local.get(topic) === members) local.delete(topic)
        dirty = true // the script may have run before the reply was lost
        throw isOurs(err) ? err : new FST_REALTIME_UNAVAILABLE((err as Error).message)
      }
    },

    async remove (topic, connId) {
      const members = local.get(topic)
      if (members === undefined || !members.delete(connId)) return { joins: [], leaves: [] }
      const emptied = members.size === 0
      if (emptied) local.delete(topic)
      try {
        const change = update(topic, nodeId, 'remove', connId)
        if (emptied) {
          // The topic is unregistered after the member is removed (else a crash in between leaves a member no sweep
          // finds). A later add of the topic sends its SADD on the same connection as this SREM (one per-node key):
          // when it came first, the topic is local again and keeps its registration.
          const own = nodeTopicsKey(nodeId)
          change.then(async () => { if (!local.has(topic)) await run(own, (c) => c.srem(own, topic)) }).catch(() => { dirty = true })
        }
        return await change
      } catch (err) {
        dirty = true
        host.log()?.debug({ err, topic }, 'fastify-realtime: presence remove deferred until Redis is back')
        return { joins: [], leaves: [] }
      }
    },

    async list (topic) {
      if (host.closed()) throw new FST_REALTIME_ADAPTER_CLOSED()
      const members = keys(topic, nodeId)[2]
      let values: string[]
      try {
        values = await run(members, (c) => c.hvals(members))
      } catch (err) {
        throw isOurs(err) ? err : new FST_REALTIME_UNAVAILABLE((err as Error).message)
      }
      return values.map(parseMember)
    },

    onChange (fn) {
      listener = fn
    },

    async close () {
      stopped = true
      clearTimeout(timer)
      await Promise.allSettled([starting, beating])
      if (starting === undefined) return // never registered
      try {
        for (const topic of [...local.keys()]) {
          local.delete(topic)
          notify(topic, await replace(topic, nodeId, []))
        }
        // Members first, node entry last: a node that vanished from the set with members left would leave ghosts.
        const own = nodeTopicsKey(nodeId)
        await run(own, (c) => c.del(own))
        await run(nodesKey, (c) => c.zrem(nodesKey, nodeId))
      } catch (err) {
        host.log()?.warn({ err }, `fastify-realtime: could not remove this node's presence; other nodes remove it within ${timeout} ms`)
      }
    }
  }
}
