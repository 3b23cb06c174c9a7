/**
 * Shard liveness of a Redis Cluster, for the cluster adapter: which masters own slots, which of them are down,
 * and a probe that proves a shard is up.
 *
 * A shard goes down on the first sign from ioredis that a connection to its master ended or failed (`-node`,
 * `node error`, `nodeError`); later events of the same outage (ioredis emits dozens per second while a master is
 * down) change nothing. A shard comes back up only when a probe went through it end to end: an SPUBLISH on a
 * probe channel in one of its slots came back on this adapter's own sharded subscriber connection. A master seen
 * for the first time (at start, after a failover) is probed before it counts as up. A shard whose master is no
 * longer in the slot map (replaced by its replica) stops counting.
 */
import { EventEmitter, once } from 'node:events'
import { randomUUID } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Cluster } from 'ioredis'
import { createRequire } from 'node:module'

/**
 * The hash slot (0..16383) of a key: CRC16 of its hash tag (`{...}`) if any, else of the whole key. From
 * cluster-key-slot, the package (and version) ioredis routes with, which ships no types.
 */
export const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number

/** Delay between two probes of a shard that is down, in ms. */
const PROBE_INTERVAL = 200
/** Longest wait for a probe's round trip, in ms. */
const PROBE_TIMEOUT = 1000
/** Failed probes of one shard after which its probe channel is subscribed again (SUNSUBSCRIBE + SSUBSCRIBE). */
const PROBE_RESUBSCRIBE_EVERY = 10

/** One master and the slots it owns; opaque outside this file. */
export interface ShardRef { readonly key: string }

export interface ClusterShards {
  /** True when the master owning the slot of `channel` is down or not yet probed (or the slot has no owner). */
  channelDown: (channel: string) => boolean
  /** The shard owning the slot of `channel` while it is up; undefined while it is down, unprobed or unknown. */
  upShardOf: (channel: string) => ShardRef | undefined
  /**
   * Settles like `command`, or rejects as soon as `shard` goes down (ioredis would keep a command to a dead master
   * retrying for seconds; nothing can reach that master's slots until its replica is promoted, which takes longer).
   */
  guard: <T>(shard: ShardRef, command: Promise<T>) => Promise<T>
  /** True when every master that owns slots is up. */
  allUp: () => boolean
  /** The masters (`host:port`) that are down or not yet probed. */
  downShards: () => string[]
  /** Resolves true once the shard of `channel` is up, false after `timeout` ms. */
  whenUp: (channel: string, timeout: number) => Promise<boolean>
  /** Resolves true once every shard is up, false after `timeout` ms. */
  whenAllUp: (timeout: number) => Promise<boolean>
  /** Handles a message on a probe channel; false for any other channel. */
  onMessage: (channel: string, message: string) => boolean
  /** A connection to `nodeKey` (`host:port`) ended or failed; marks its shard down if it owns slots. */
  markDown: (nodeKey: string | undefined, err: Error | undefined) => void
  /** The shard owning the slot of `channel` failed a command; marks it down. */
  markChannelDown: (channel: string, err: Error) => void
  /** Reads the slot map again (after a slots refresh): new masters are probed, replaced ones are forgotten. */
  refresh: () => void
  /** Stops probing and releases the probe channels (SUNSUBSCRIBE, one per call). */
  stop: (release: boolean) => Promise<void>
}

interface Shard extends ShardRef {
  down: boolean
  /** Why it is down (for the log), or undefined while up. */
  cause: Error | undefined
  /** The probe channel, in one of its slots. */
  probe: string | undefined
  /** Its SSUBSCRIBE (tracked by ioredis afterwards, which subscribes it again after topology changes). */
  subscribed: Promise<unknown>
  probing: boolean
  failures: number
  /** Rejecters of the guarded commands in flight on it. */
  inflight: Set<(err: Error) => void>
}

/**
 * Tracks the shards of `cluster` (connected, with its slot map loaded). `prefix` starts the probe channels'
 * names (`<prefix>{__probe:<instance>:<n>}`, one per master, unique to this adapter instance).
 */
export function clusterShards (cluster: Cluster, prefix: string, log: () => FastifyBaseLogger | undefined): ClusterShards {
  const instance = randomUUID().slice(0, 8)
  const shards = new Map<string, Shard>()
  const probes = new Map<string, string>() // probe channel -> master key
  const waiters = new Map<string, (message: string) => void>()
  const changes = new EventEmitter()
  changes.setMaxListeners(0)
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  let nextProbe = 0
  let seq = 0

  function ownerOf (channel: string): string | undefined {
    return cluster.slots[calculateSlot(channel)]?.[0]
  }

  function probeChannelFor (key: string): string {
    for (let tries = 0; tries < 100_000; tries++) {
      const channel = `${prefix}{__probe:${instance}:${nextProbe++}}`
      if (ownerOf(channel) === key) return channel
    }
    throw new Error(`no probe channel found for Redis Cluster node ${key}`)
  }

  function setDown (key: string, shard: Shard, cause: Error | undefined): void {
    if (shard.down || stopped) return
    shard.down = true
    shard.cause = cause
    const err = new Error(`Redis Cluster shard ${key} unreachable: ${cause?.message ?? 'connection ended'}`)
    for (const reject of shard.inflight) reject(err)
    shard.inflight.clear()
    log()?.warn({ err: cause, shard: key }, 'fastify-realtime: Redis Cluster shard unreachable; publishes to its slots answer UNAVAILABLE until it is back')
    changes.emit('change')
    schedule(0)
  }

  function setUp (key: string, shard: Shard): void {
    if (!shard.down) return
    const wasCaused = shard.cause !== undefined
    shard.down = false
    shard.cause = undefined
    shard.failures = 0
    if (wasCaused) log()?.info({ shard: key }, 'fastify-realtime: Redis Cluster shard reachable again')
    changes.emit('change')
  }

  function refresh (): void {
    if (stopped) return
    const owners = new Set<string>()
    for (const nodes of cluster.slots) if (nodes?.[0] !== undefined) owners.add(nodes[0])
    for (const [key, shard] of shards) {
      if (owners.has(key)) continue
      shards.delete(key)
      if (shard.probe !== undefined) probes.delete(shard.probe)
      if (shard.down) log()?.info({ shard: key }, 'fastify-realtime: Redis Cluster shard replaced (its slots have a new master)')
      changes.emit('change')
    }
    for (const key of owners) {
      let shard = shards.get(key)
      if (shard === undefined) {
        // Not yet probed: it counts as down (without a log line) until a probe went through it.
        shard = { key, down: true, cause: undefined, probe: undefined, subscribed: Promise.resolve(), probing: false, failures: 0, inflight: new Set() }
        shards.set(key, shard)
        changes.emit('change')
      }
      if (shard.probe !== undefined && ownerOf(shard.probe) !== key) {
        // Its slot moved: the channel now probes another master. Find one in a slot this master still owns.
        probes.delete(shard.probe)
        cluster.sunsubscribe(shard.probe).catch(() => {})
        shard.probe = undefined
      }
      if (shard.probe === undefined) {
        shard.probe = probeChannelFor(key)
        probes.set(shard.probe, key)
        shard.subscribed = cluster.ssubscribe(shard.probe).catch(() => {})
      }
    }
    schedule(0)
  }

  function schedule (delay: number): void {
    if (stopped || timer !== undefined) return
    timer = setTimeout(tick, delay)
    timer.unref()
  }

  function tick (): void {
    timer = undefined
    let anyDown = false
    for (const [key, shard] of shards) {
      if (!shard.down) continue
      anyDown = true
      if (!shard.probing) probe(key, shard).catch(() => {})
    }
    if (anyDown) schedule(PROBE_INTERVAL)
  }

  async function probe (key: string, shard: Shard): Promise<void> {
    const channel = shard.probe
    if (channel === undefined) return
    shard.probing = true
    const token = `${instance}:${++seq}`
    let timeout: NodeJS.Timeout | undefined
    try {
      if (shard.failures > 0 && shard.failures % PROBE_RESUBSCRIBE_EVERY === 0) {
        await cluster.sunsubscribe(channel).catch(() => {})
        shard.subscribed = cluster.ssubscribe(channel).catch(() => {})
      }
      const arrived = new Promise<boolean>((resolve) => {
        waiters.set(channel, (message) => { if (message === token) resolve(true) })
        timeout = setTimeout(() => resolve(false), PROBE_TIMEOUT)
      })
      await Promise.race([shard.subscribed, arrived])
      await cluster.spublish(channel, token)
      if (await arrived && shards.get(key) === shard && shard.probe === channel) setUp(key, shard)
      else shard.failures++
    } catch {
      shard.failures++
    } finally {
      clearTimeout(timeout)
      waiters.delete(channel)
      shard.probing = false
    }
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
    if (key === undefined) return true
    return shards.get(key)?.down ?? false
  }

  return {
    channelDown,
    upShardOf (channel) {
      const key = ownerOf(channel)
      const shard = key === undefined ? undefined : shards.get(key)
      return shard === undefined || shard.down ? undefined : shard
    },
    guard (ref, command) {
      const shard = ref as Shard
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
      for (const shard of shards.values()) if (shard.down) return false
      return true
    },
    downShards: () => [...shards].filter(([, s]) => s.down).map(([key]) => key),
    whenUp: (channel, timeout) => waitFor(() => !channelDown(channel), timeout),
    whenAllUp (timeout) {
      return waitFor(() => shards.size > 0 && [...shards.values()].every((s) => !s.down), timeout)
    },
    onMessage (channel, message) {
      if (!probes.has(channel)) return false
      waiters.get(channel)?.(message)
      return true
    },
    markDown (nodeKey, err) {
      if (nodeKey === undefined) return
      const shard = shards.get(nodeKey)
      if (shard !== undefined) setDown(nodeKey, shard, err ?? new Error(`connection to ${nodeKey} ended`))
    },
    markChannelDown (channel, err) {
      const key = ownerOf(channel)
      if (key !== undefined) this.markDown(key, err)
    },
    refresh,
    async stop (release) {
      stopped = true
      clearTimeout(timer)
      timer = undefined
      changes.emit('change')
      const channels = [...probes.keys()]
      probes.clear()
      shards.clear()
      if (release) await Promise.all(channels.map((channel) => cluster.sunsubscribe(channel).catch(() => {})))
    }
  }
}
