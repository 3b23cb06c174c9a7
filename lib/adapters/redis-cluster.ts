/**
 * The Redis Cluster adapter: sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis >= 7.0), so a channel's messages go only
 * to the shard owning its hash slot and adding shards adds pub/sub capacity. Reached through
 * `redisAdapter({ cluster })`; everything the single-Redis adapter promises holds per shard, including the history and
 * presence capabilities (the same scripts as on one Redis, redis-history.ts and redis-presence.ts, each run on the
 * master owning its keys' slot).
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { once } from 'node:events'
import { Cluster, type Redis } from 'ioredis'
import type { RealtimeAdapter } from './adapter.js'
import { deliverEnvelope, plainEnvelope } from './redis-envelope.js'
import { clusterHost } from './redis-cluster-host.js'
import { shardRecovery } from './redis-cluster-recovery.js'
import { clusterShards, type ClusterShards } from './redis-cluster-shards.js'
import { redisHistory } from './redis-history.js'
import { redisPresence } from './redis-presence.js'
import { shardProber, type ShardProber } from './redis-cluster-probe.js'
import { topicRefs } from './topic-refs.js'
import { describeNodes, versionProblem, type RedisClusterNode } from './redis-cluster-options.js'
import { FST_REALTIME_ADAPTER_CLOSED, FST_REALTIME_INVALID_OPTION, FST_REALTIME_UNAVAILABLE } from '../errors.js'

/** What `redisAdapter({ cluster })` passes on (checked by `redisAdapter`). */
export interface RedisClusterAdapterOptions {
  cluster: Cluster | RedisClusterNode[]
  prefix: string
  subscribeTimeout: number
  /** Bound (ms) within which a crashed node's presence members are removed (see redis-presence.ts). */
  presenceTimeout: number
  /** Time (ms) a topic's stream position is kept after its last use (see redis-history.ts). */
  historyMetaTtl: number
}

/**
 * Creates the Redis Cluster adapter (see `redisAdapter({ cluster })` for the contract). Channels are
 * `<prefix>{<topic>}`: the hash tag puts a topic's channel and its keys in one slot.
 *
 * Order: messages of one publisher to one topic arrive in publish order; messages to different topics may live
 * on different shards, whose connections are independent, so their relative order is not kept.
 *
 * History catch-up after a shard was down or stale: redis-cluster-recovery.ts. History and presence commands go
 * through redis-cluster-host.ts (per-shard guards).
 */
export function redisClusterAdapter (options: RedisClusterAdapterOptions): RealtimeAdapter {
  const { prefix, subscribeTimeout } = options
  const owned = Array.isArray(options.cluster)
  let cluster: Cluster | undefined = owned ? undefined : options.cluster as Cluster
  let shards: ClusterShards | undefined
  let prober: ShardProber | undefined
  let log: FastifyBaseLogger | undefined
  let closed = false
  let closing: Promise<void> | undefined
  let clusterDown = false

  const channel = (topic: string): string => `${prefix}{${topic}}`

  function onMessage (key: string, message: string): void {
    const handlers = topics.handlers(key)
    if (handlers !== undefined) deliverEnvelope(handlers, message, key, log)
    else prober?.onMessage(key, message)
  }
  // ioredis events: a connection of a node ended or failed. The first one marks the shard down; the rest of the
  // storm changes nothing (the shard is already down) and is not logged.
  const onNodeEnd = (redis: Redis | undefined, key?: string): void => {
    shards?.markDown(key ?? (redis === undefined ? undefined : `${redis.options.host}:${redis.options.port}`), undefined)
  }
  const onNodeError = (err: Error, key: string): void => { shards?.markDown(key, err) }
  const onError = (): void => {} // keyless duplicates of nodeError (subscriber connect failures), or all nodes failed
  const onRefresh = (): void => { prober?.onRefresh() }
  const onReconnecting = (): void => {
    if (closed || clusterDown) return
    clusterDown = true
    log?.warn('fastify-realtime: Redis Cluster unreachable (no node answers); publishing answers UNAVAILABLE until it is back')
  }
  const onReady = (): void => {
    if (!clusterDown) return
    clusterDown = false
    log?.info('fastify-realtime: Redis Cluster reachable again')
    prober?.onRefresh()
  }

  /** Our listeners on the Cluster ('error' apart: see unlisten). */
  const listeners: Array<[string, (...args: any[]) => void]> = [
    ['smessage', onMessage], ['-node', onNodeEnd], ['node error', onNodeError], ['nodeError', onNodeError],
    ['refresh', onRefresh], ['reconnecting', onReconnecting], ['ready', onReady]
  ]

  function listen (c: Cluster): void {
    for (const [event, listener] of listeners) c.on(event, listener)
    c.on('error', onError)
  }

  function unlisten (c: Cluster): void {
    for (const [event, listener] of listeners) c.off(event, listener)
    // Our own Cluster keeps its no-op 'error' listener: ioredis may still emit while it shuts down, and an
    // EventEmitter without one throws. The app's Cluster gets back exactly the listeners it had.
    if (!owned) c.off('error', onError)
  }

  /** Rejects with FST_REALTIME_UNAVAILABLE after `ms`. */
  async function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([promise, new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new FST_REALTIME_UNAVAILABLE(`${what}: no answer within ${ms} ms`)), Math.max(ms, 0))
      })])
    } finally {
      clearTimeout(timer)
    }
  }

  async function subscribeKey (key: string): Promise<void> {
    const c = cluster!
    const deadline = Date.now() + subscribeTimeout
    for (;;) {
      if (!(await shards!.whenUp(key, deadline - Date.now())) || c.status !== 'ready') {
        throw new FST_REALTIME_UNAVAILABLE(`the Redis Cluster shard of ${key} is unreachable (waited ${subscribeTimeout} ms)`)
      }
      try {
        await within(c.ssubscribe(key), deadline - Date.now(), `SSUBSCRIBE ${key}`)
        return
      } catch (err) {
        // MOVED (the slot moved meanwhile) or a lost connection: wait for ioredis to settle the new topology.
        if (closed || Date.now() >= deadline) {
          throw (err as { code?: string }).code === 'FST_REALTIME_UNAVAILABLE' ? err : new FST_REALTIME_UNAVAILABLE((err as Error).message)
        }
        await once(c, 'subscribersReady', { signal: AbortSignal.timeout(Math.max(deadline - Date.now(), 1)) }).catch(() => {})
      }
    }
  }

  /** SUNSUBSCRIBE one channel (never the argument-less form), bounded: a shard that is down may never answer. */
  async function releaseKey (key: string): Promise<void> {
    const c = cluster
    if (c === undefined) return
    await within(c.sunsubscribe(key), subscribeTimeout, `SUNSUBSCRIBE ${key}`).catch(() => {})
  }

  // One SSUBSCRIBE per channel per node while it has local handlers.
  const topics = topicRefs({ subscribe: subscribeKey, release: releaseKey, closed: () => closed })

  const recovery = shardRecovery(async (owners) => {
    const c = cluster
    if (c === undefined) return
    // A replica that took over may lack this node's last presence writes: rewrite them at the next heartbeat.
    presence.invalidate()
    const channels = [...topics.keys()].filter((key) => owners.has(shards?.ownerOf(key) ?? ''))
    await Promise.all(channels.map((key) => within(c.ssubscribe(key), subscribeTimeout, `SSUBSCRIBE ${key}`).catch(() => {})))
  }, () => log)
  const host = clusterHost({ cluster: () => cluster, shards: () => shards, closed: () => closed, log: () => log, prefix, channel })
  const history = redisHistory(host, options.historyMetaTtl)
  const presence = redisPresence(host, options.presenceTimeout)

  return {
    history: { ...history, onReconnect: recovery.onReconnect },
    presence: { start: presence.start, add: presence.add, remove: presence.remove, list: presence.list, onChange: presence.onChange },

    async init (fastify: FastifyInstance) {
      log = fastify.log
      if (cluster === undefined) {
        // No offline queue: a publish is answered now, never replayed later. Subscriber connections keep theirs
        // (ioredis forces it), bounded by subscribeTimeout here.
        cluster = new Cluster(options.cluster as RedisClusterNode[], { shardedSubscribers: true, lazyConnect: true, enableOfflineQueue: false })
      }
      const c = cluster
      listen(c)
      let cause: Error | undefined
      const remember = (err: Error): void => { cause ??= err }
      c.on('error', remember)
      c.on('node error', remember)
      try {
        if (c.status === 'wait') c.connect().catch(() => {})
        if (c.status !== 'ready') await once(c, 'ready', { signal: AbortSignal.timeout(subscribeTimeout) })
      } catch {
        unlisten(c)
        if (owned) c.disconnect()
        const why = cause === undefined ? `not ready within ${subscribeTimeout} ms` : cause.message
        throw new FST_REALTIME_UNAVAILABLE(`cannot connect to the Redis Cluster at ${describeNodes(c)}: ${why}`)
      } finally {
        c.off('error', remember)
        c.off('node error', remember)
      }
      let problems: string[]
      try {
        problems = (await Promise.all(c.nodes('master').map(async (node) => {
          const info = await within(node.info('server'), subscribeTimeout, 'INFO server')
          return versionProblem(info, `${node.options.host}:${node.options.port}`)
        }))).filter((p) => p !== undefined)
      } catch (err) {
        unlisten(c)
        if (owned) c.disconnect()
        throw new FST_REALTIME_UNAVAILABLE(`cannot read the Redis version of the cluster masters: ${(err as Error).message}`)
      }
      if (problems.length > 0) {
        unlisten(c)
        if (owned) c.disconnect()
        throw new FST_REALTIME_INVALID_OPTION(`redisAdapter cluster: ${problems.join('; ')}`)
      }
      shards = clusterShards(c, () => log, (shard) => recovery.shardUp(shard.key))
      prober = shardProber(c, shards, prefix, () => topics.keys())
      prober.onRefresh()
      // ready() means ready: a probe went through every shard (publish path and our subscriber connection).
      if (!(await shards.whenAllUp(subscribeTimeout))) {
        const down = shards.downShards().join(', ')
        shards.stop()
        await prober.stop(!owned)
        unlisten(c)
        if (owned) c.disconnect()
        throw new FST_REALTIME_UNAVAILABLE(`the Redis Cluster shards ${down} did not answer a probe within ${subscribeTimeout} ms`)
      }
      recovery.start()
    },

    status () {
      if (closed) return 'closed'
      return cluster?.status === 'ready' && shards?.allUp() === true ? 'ready' : 'reconnecting'
    },

    async subscribe (topic, handler) {
      if (closed) throw new FST_REALTIME_ADAPTER_CLOSED()
      await topics.add(channel(topic), handler)
    },

    async unsubscribe (topic, handler) {
      // The SUNSUBSCRIBE is sent even while the shard is down: it also removes the channel from ioredis' list of
      // channels to subscribe again after a topology change.
      await topics.remove(channel(topic), handler)
    },

    async publish (topic, message) {
      const key = channel(topic)
      // Through the host's shard guard, as history and presence: refused at once while the shard is down, rejected
      // when it goes down in flight. The same strings as the single-Redis adapter (redis-envelope.ts).
      await host.run(key, (c) => c.spublish(key, plainEnvelope(message))).catch((err: unknown) => {
        const code = (err as { code?: string }).code
        throw code === 'FST_REALTIME_UNAVAILABLE' || code === 'FST_REALTIME_ADAPTER_CLOSED' ? err : new FST_REALTIME_UNAVAILABLE((err as Error).message)
      })
    },

    close () {
      closing ??= (async () => {
        await presence.close() // this node's members first, while the connections still work
        closed = true
        recovery.stop()
        const keys = [...topics.keys()]
        topics.clear()
        const c = cluster
        if (c === undefined) return
        shards?.stop()
        // A Cluster that is not ready (e.g. the app disconnected it) may never answer: nothing to release on it.
        const release = !owned && c.status === 'ready'
        await within(prober?.stop(release) ?? Promise.resolve(), subscribeTimeout, 'SUNSUBSCRIBE of the probe channels').catch(() => {})
        if (owned) {
          unlisten(c)
          await within(c.quit(), subscribeTimeout, 'QUIT').catch(() => c.disconnect())
          return
        }
        // The app's Cluster stays open: release exactly our channels, one per SUNSUBSCRIBE.
        if (release) await Promise.all(keys.map(releaseKey))
        unlisten(c)
      })()
      return closing
    }
  }
}
