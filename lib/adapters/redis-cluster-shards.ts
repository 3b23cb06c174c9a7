/**
 * The shard table of the Redis Cluster adapter: which masters own slots, and the state of each as this node sees
 * it. A shard is
 * - down: a connection to its master ended or failed (`-node`, `node error`, `nodeError`, a failed publish or
 *   probe), or it was never probed yet. Publishes to its slots answer UNAVAILABLE; subscribes wait for it.
 * - stale: publishing to it works but a probe published on it did not come back on this node's sharded subscriber
 *   connection: this node's subscriptions there are lost (see redis-cluster-probe.ts, which heals them).
 *   Publishes are accepted (other nodes still get them); `allUp()` is false, so health is degraded.
 * - up otherwise: only a probe that went through it end to end brings a shard up.
 * Each state change is logged once (ioredis emits dozens of errors per second while a master is down).
 */
import { EventEmitter, once } from 'node:events'
import { createRequire } from 'node:module'
import type { FastifyBaseLogger } from 'fastify'
import type { Cluster } from 'ioredis'

/**
 * The hash slot (0..16383) of a key: CRC16 of its hash tag (`{...}`) if any, else of the whole key. From
 * cluster-key-slot, the package (and version) ioredis routes with, which ships no types.
 */
export const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number

/** One master that owns slots, and this node's view of it. */
export interface Shard {
  /** `host:port` of the master. */
  readonly key: string
  down: boolean
  stale: boolean
  /** Why it is down (for the log); undefined while up, or down only because not yet probed. */
  cause: Error | undefined
  /** Its probe channel (in one of its slots), chosen by the prober. */
  probe: string | undefined
  /** The SSUBSCRIBE of its probe channel. */
  subscribed: Promise<unknown>
  probing: boolean
  /** When it is probed next (epoch ms). */
  nextProbeAt: number
  /** Earliest time of its next heal (epoch ms). */
  healAt: number
  /** Rejecters of the guarded commands in flight on it. */
  readonly inflight: Set<(err: Error) => void>
}

/** This node's view of the cluster's masters (see the file comment for the states); one per adapter. */
export interface ClusterShards {
  /** The master (`host:port`) owning the slot of `channel` in ioredis' slot map, if any. */
  ownerOf: (channel: string) => string | undefined
  /** The shard of a master, if it owns slots. */
  get: (key: string) => Shard | undefined
  /** Every shard. */
  all: () => IterableIterator<Shard>
  /** The shard owning the slot of `channel` while it is not down; undefined while down, unprobed or unknown. */
  upShardOf: (channel: string) => Shard | undefined
  /**
   * Settles like `command`, or rejects as soon as `shard` goes down (ioredis would keep a command to a dead master
   * retrying for seconds; nothing can reach that master's slots until its replica is promoted, which takes longer).
   */
  guard: <T>(shard: Shard, command: Promise<T>) => Promise<T>
  /** True when every master that owns slots is up (neither down nor stale). */
  allUp: () => boolean
  /** The masters (`host:port`) that are down, unprobed or stale. */
  downShards: () => string[]
  /** Resolves true once the shard of `channel` is not down, false after `timeout` ms. */
  whenUp: (channel: string, timeout: number) => Promise<boolean>
  /** Resolves true once every shard is up, false after `timeout` ms. */
  whenAllUp: (timeout: number) => Promise<boolean>
  /** A connection to `nodeKey` (`host:port`) ended or failed; marks its shard down if it owns slots. */
  markDown: (nodeKey: string | undefined, err: Error | undefined) => void
  /** The shard owning the slot of `channel` failed a command; marks it down. */
  markChannelDown: (channel: string, err: Error) => void
  /** A probe published on `shard` did not come back: marks it stale (unless down). */
  markStale: (shard: Shard) => void
  /** A probe went through `shard`: marks it up. */
  markUp: (shard: Shard) => void
  /**
   * Reads ioredis' slot map again: masters that no longer own slots are forgotten (and returned), new ones are
   * added, down and unprobed.
   */
  sync: () => Shard[]
  /** Forgets every shard; waiters resolve false. */
  stop: () => void
}

/**
 * The shard table of `cluster` (connected, with its slot map loaded). `onUp`, when given, is called each time a
 * shard becomes up (from down, unprobed or stale), after its state changed.
 */
export function clusterShards (cluster: Cluster, log: () => FastifyBaseLogger | undefined, onUp?: (shard: Shard) => void): ClusterShards {
  const shards = new Map<string, Shard>()
  const changes = new EventEmitter()
  changes.setMaxListeners(0)
  let stopped = false

  const ownerOf = (channel: string): string | undefined => cluster.slots[calculateSlot(channel)]?.[0]
  const healthy = (shard: Shard): boolean => !shard.down && !shard.stale

  function markDown (nodeKey: string | undefined, err: Error | undefined): void {
    const shard = nodeKey === undefined ? undefined : shards.get(nodeKey)
    // Down already with a cause: the rest of the storm. Down without one (not yet probed): this is its first verdict.
    if (shard === undefined || (shard.down && shard.cause !== undefined) || stopped) return
    const cause = err ?? new Error(`connection to ${shard.key} ended`)
    shard.down = true
    shard.stale = false
    shard.cause = cause
    shard.nextProbeAt = 0
    const rejection = new Error(`Redis Cluster shard ${shard.key} unreachable: ${cause.message}`)
    for (const reject of shard.inflight) reject(rejection)
    shard.inflight.clear()
    log()?.warn({ err: cause, shard: shard.key }, 'fastify-realtime: Redis Cluster shard unreachable; publishes to its slots answer UNAVAILABLE until it is back')
    changes.emit('change')
  }

  async function waitFor (predicate: () => boolean, timeout: number): Promise<boolean> {
    const deadline = Date.now() + timeout
    while (!predicate()) {
      const remaining = deadline - Date.now()
      if (remaining <= 0 || stopped) return false
      try {
        await once(changes, 'change', { signal: AbortSignal.timeout(remaining) })
      } catch {
        return predicate()
      }
    }
    return true
  }

  function channelDown (channel: string): boolean {
    const key = ownerOf(channel)
    return key === undefined || (shards.get(key)?.down ?? true)
  }

  return {
    ownerOf,
    get: (key) => shards.get(key),
    all: () => shards.values(),
    upShardOf (channel) {
      const key = ownerOf(channel)
      const shard = key === undefined ? undefined : shards.get(key)
      return shard === undefined || shard.down ? undefined : shard
    },
    guard (shard, command) {
      return new Promise((resolve, reject) => {
        shard.inflight.add(reject)
        command.then((value) => {
          shard.inflight.delete(reject)
          resolve(value)
        }, (err: unknown) => {
          shard.inflight.delete(reject)
          reject(err)
        })
      })
    },
    allUp () {
      if (shards.size === 0) return false
      for (const shard of shards.values()) if (!healthy(shard)) return false
      return true
    },
    downShards: () => [...shards.values()].filter((s) => !healthy(s)).map((s) => s.key),
    whenUp: (channel, timeout) => waitFor(() => !channelDown(channel), timeout),
    whenAllUp: (timeout) => waitFor(() => shards.size > 0 && [...shards.values()].every(healthy), timeout),
    markDown,
    markChannelDown (channel, err) { markDown(ownerOf(channel), err) },
    markStale (shard) {
      // A shard down for a cause stays down; one not yet probed (down without a cause) can be stale: its publish
      // path answered, its subscription did not (a new master whose channels ioredis has not subscribed there).
      if ((shard.down && shard.cause !== undefined) || shard.stale || stopped) return
      shard.down = false
      shard.stale = true
      log()?.warn({ shard: shard.key }, 'fastify-realtime: Redis Cluster shard subscription stale (a probe published on it did not come back); subscribing again')
      changes.emit('change')
    },
    markUp (shard) {
      if (healthy(shard) || stopped) return
      const logged = shard.cause !== undefined || shard.stale
      const was = shard.stale ? 'subscription restored' : 'reachable again'
      shard.down = false
      shard.stale = false
      shard.cause = undefined
      if (logged) log()?.info({ shard: shard.key }, `fastify-realtime: Redis Cluster shard ${was}`)
      changes.emit('change')
      onUp?.(shard)
    },
    sync () {
      if (stopped) return []
      const owners = new Set<string>()
      for (const nodes of cluster.slots) if (nodes?.[0] !== undefined) owners.add(nodes[0])
      const gone: Shard[] = []
      for (const [key, shard] of shards) {
        if (owners.has(key)) continue
        shards.delete(key)
        gone.push(shard)
        if (shard.cause !== undefined || shard.stale) log()?.info({ shard: key }, 'fastify-realtime: Redis Cluster shard replaced (its slots have a new master)')
        changes.emit('change')
      }
      for (const key of owners) {
        if (shards.has(key)) continue
        // Not yet probed: it counts as down (without a log line) until a probe went through it.
        const shard: Shard = { key, down: true, stale: false, cause: undefined, probe: undefined, subscribed: Promise.resolve(), probing: false, nextProbeAt: 0, healAt: 0, inflight: new Set() }
        shards.set(key, shard)
        changes.emit('change')
      }
      return gone
    },
    stop () {
      stopped = true
      shards.clear()
      changes.emit('change')
    }
  }
}
