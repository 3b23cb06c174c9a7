/**
 * Liveness probes of the Redis Cluster adapter's shards, and the healing of stale sharded subscriptions.
 *
 * Why: after a failover or a slot migration the server drops the moved channels from the old owner's subscriber
 * connections (a `sunsubscribe` push) and ioredis 6 reads the slot map again to subscribe them on the new owner.
 * It reads that map from one random node, which may not know of the change yet; then ioredis sees no change and
 * never subscribes again, while SPUBLISH to the old master (now a replica) still succeeds: this node's members
 * would miss every message of that shard, silently and for good (seen about once in ten failovers).
 *
 * What: each master gets a probe channel in one of its slots (`<prefix>{__probe:<instance>:<n>}`, subscribed like a
 * topic). A probe SPUBLISHes a token on it and expects it back on this node's subscriber connection within
 * CLUSTER_PROBE_TIMEOUT. Every shard is probed every CLUSTER_PROBE_INTERVAL, right after every slot map refresh
 * (which follows every `sunsubscribe` push, MOVED reply and lost connection), and every CLUSTER_PROBE_RETRY while
 * down or stale. Outcomes:
 * - the token came back: the shard is up;
 * - SPUBLISH failed or was not answered: the shard is down;
 * - SPUBLISH was answered but the token never came back: the shard is stale. Healing: ask ioredis for a new slot
 *   map (a changed map makes it subscribe every channel again on the current owners), then SSUBSCRIBE again every
 *   local channel in that shard's slots (an SSUBSCRIBE of a channel already subscribed changes nothing on the
 *   server; ioredis records it once more in its list for later resubscriptions, which SUNSUBSCRIBE empties).
 * Every refresh ioredis makes is also followed by a second one CLUSTER_REFRESH_CONFIRM_DELAY later, so a stale
 * map read during a slot migration (whose channels the per-shard probe does not cover) is corrected too.
 */
import { randomUUID } from 'node:crypto'
import type { Cluster } from 'ioredis'
import type { ClusterShards, Shard } from './redis-cluster-shards.js'
import { CLUSTER_PROBE_INTERVAL, CLUSTER_PROBE_RETRY, CLUSTER_PROBE_TIMEOUT, CLUSTER_REFRESH_CONFIRM_DELAY } from '../constants.js'

/** The probes of one cluster adapter's shards (see the file comment); created by `shardProber`. */
export interface ShardProber {
  /** Handles a message on a probe channel; false for any other channel. */
  onMessage: (channel: string, message: string) => boolean
  /** ioredis read the slot map (its 'refresh' event): sync the shards, probe them all now, confirm the map later. */
  onRefresh: () => void
  /** Stops probing (timers cleared) and, when `release`, SUNSUBSCRIBEs the probe channels (one per call). */
  stop: (release: boolean) => Promise<void>
}

/**
 * Probes the shards of `shards` on `cluster`. `prefix` starts the probe channels' names; `localChannels` lists the
 * channels this node subscribed (to heal them).
 */
export function shardProber (cluster: Cluster, shards: ClusterShards, prefix: string, localChannels: () => Iterable<string>): ShardProber {
  const instance = randomUUID().slice(0, 8)
  const probes = new Map<string, Shard>() // probe channel -> its shard
  const waiters = new Map<string, (message: string) => void>()
  let timer: NodeJS.Timeout | undefined
  let timerAt = Infinity
  let confirmTimer: NodeJS.Timeout | undefined
  let ownRefresh = false
  let stopped = false
  let nextProbe = 0
  let seq = 0

  function probeChannelFor (key: string): string {
    for (let tries = 0; tries < 100_000; tries++) {
      const channel = `${prefix}{__probe:${instance}:${nextProbe++}}`
      if (shards.ownerOf(channel) === key) return channel
    }
    throw new Error(`no probe channel found for Redis Cluster node ${key}`)
  }

  /** Shards added and removed per ioredis' slot map; each shard gets a probe channel in a slot it owns. */
  function sync (): void {
    for (const gone of shards.sync()) {
      if (gone.probe === undefined) continue
      probes.delete(gone.probe)
      cluster.sunsubscribe(gone.probe).catch(() => {})
    }
    for (const shard of shards.all()) {
      if (shard.probe !== undefined && shards.ownerOf(shard.probe) !== shard.key) {
        // Its slot moved: the channel now probes another master. Find one in a slot this master still owns.
        probes.delete(shard.probe)
        cluster.sunsubscribe(shard.probe).catch(() => {})
        shard.probe = undefined
      }
      if (shard.probe === undefined) {
        shard.probe = probeChannelFor(shard.key)
        probes.set(shard.probe, shard)
        shard.subscribed = cluster.ssubscribe(shard.probe).catch(() => {})
      }
    }
  }

  function schedule (at: number): void {
    if (stopped || at >= timerAt) return
    clearTimeout(timer)
    timerAt = at
    timer = setTimeout(tick, Math.max(at - Date.now(), 0))
    timer.unref()
  }

  function tick (): void {
    timer = undefined
    timerAt = Infinity
    const now = Date.now()
    let next = Infinity
    for (const shard of shards.all()) {
      if (!shard.probing && shard.nextProbeAt <= now) probe(shard).catch(() => {})
      else if (!shard.probing) next = Math.min(next, shard.nextProbeAt)
    }
    if (next !== Infinity) schedule(next)
  }

  async function probe (shard: Shard): Promise<void> {
    const channel = shard.probe
    if (channel === undefined) return
    shard.probing = true
    const token = `${instance}:${++seq}`
    let timeout: NodeJS.Timeout | undefined
    let settle: (ok: boolean) => void = () => {}
    let answered = false
    let failure: Error | undefined
    try {
      const arrived = new Promise<boolean>((resolve) => {
        settle = resolve
        waiters.set(channel, (message) => { if (message === token) resolve(true) })
        timeout = setTimeout(() => resolve(false), CLUSTER_PROBE_TIMEOUT)
      })
      // A probe channel still being subscribed (bounded by the probe's timeout) is no verdict on the publish path.
      const subscribed = await Promise.race([shard.subscribed.then(() => true), arrived.then(() => false)])
      if (subscribed) {
        cluster.spublish(channel, token).then(() => { answered = true }, (err: Error) => {
          failure = err
          settle(false)
        })
      }
      const ok = await arrived
      if (stopped || shards.get(shard.key) !== shard || shard.probe !== channel) return
      if (ok) {
        shards.markUp(shard)
      } else if (subscribed && !answered) {
        shards.markDown(shard.key, failure ?? new Error(`probe not answered within ${CLUSTER_PROBE_TIMEOUT} ms`))
      } else {
        shards.markStale(shard)
        heal(shard)
      }
    } finally {
      clearTimeout(timeout)
      waiters.delete(channel)
      shard.probing = false
      shard.nextProbeAt = Date.now() + (shard.down || shard.stale ? CLUSTER_PROBE_RETRY : CLUSTER_PROBE_INTERVAL)
      schedule(shard.nextProbeAt)
    }
  }

  /** Reads the slot map (ioredis' refresh; concurrent calls share one), then calls `done` unless stopped. */
  function refreshMap (done: () => void): void {
    ownRefresh = true
    cluster.refreshSlotsCache(() => {
      ownRefresh = false
      if (!stopped) done()
    })
  }

  /** The probe published on `shard` did not come back: subscribe its channels again (at most once per interval). */
  function heal (shard: Shard): void {
    const now = Date.now()
    if (now < shard.healAt) return
    shard.healAt = now + CLUSTER_PROBE_INTERVAL
    refreshMap(() => {
      // Replaced meanwhile: ioredis subscribed everything again on the new owner, which gets probed as a new shard.
      if (shards.get(shard.key) !== shard) return
      for (const channel of localChannels()) {
        if (shards.ownerOf(channel) === shard.key) cluster.ssubscribe(channel).catch(() => {})
      }
      if (shard.probe !== undefined) shard.subscribed = cluster.ssubscribe(shard.probe).catch(() => {})
    })
  }

  return {
    onMessage (channel, message) {
      if (!probes.has(channel)) return false
      waiters.get(channel)?.(message)
      return true
    },
    onRefresh () {
      if (stopped) return
      sync()
      for (const shard of shards.all()) shard.nextProbeAt = 0
      schedule(0)
      if (!ownRefresh && confirmTimer === undefined) {
        confirmTimer = setTimeout(() => {
          confirmTimer = undefined
          refreshMap(() => {})
        }, CLUSTER_REFRESH_CONFIRM_DELAY)
        confirmTimer.unref()
      }
    },
    async stop (release) {
      stopped = true
      clearTimeout(timer)
      clearTimeout(confirmTimer)
      timer = confirmTimer = undefined
      const channels = [...probes.keys()]
      probes.clear()
      if (release) await Promise.all(channels.map((channel) => cluster.sunsubscribe(channel).catch(() => {})))
    }
  }
}
