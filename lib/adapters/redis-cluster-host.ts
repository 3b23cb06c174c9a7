/**
 * The `RedisHost` of the Redis Cluster adapter: what its history and presence capabilities run their commands
 * through. Each command (or script, routed by its first key) goes to the master owning the key's slot, and only
 * while this node sees that shard up: a shard down, unprobed or unknown answers FST_REALTIME_UNAVAILABLE at once,
 * and a command in flight when its shard goes down is rejected then (never queued without bound).
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Cluster } from 'ioredis'
import type { ClusterShards } from './redis-cluster-shards.js'
import type { RedisCommands, RedisHost } from './redis-host.js'
import { FST_REALTIME_ADAPTER_CLOSED, FST_REALTIME_UNAVAILABLE } from '../errors.js'

/** Error replies that speak of the shard (cluster state failed, slot migrating, loading, master down), not of the command. */
const SHARD_STATE_REPLY = /^(CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN)\b/

/** What the host reads from the adapter, each time it is used. */
export interface ClusterHostSource {
  cluster: () => Cluster | undefined
  shards: () => ClusterShards | undefined
  closed: () => boolean
  log: () => FastifyBaseLogger | undefined
  prefix: string
  channel: (topic: string) => string
}

/** The host of a cluster adapter: SPUBLISH, the writer check of the history scripts, per-shard guards. */
export function clusterHost (source: ClusterHostSource): RedisHost {
  return {
    async run (key, command) {
      const c = source.cluster()
      const shards = source.shards()
      if (source.closed() || c === undefined) throw new FST_REALTIME_ADAPTER_CLOSED()
      const shard = c.status === 'ready' ? shards?.upShardOf(key) : undefined
      if (shard === undefined) throw new FST_REALTIME_UNAVAILABLE(`the Redis Cluster shard of ${key} is unreachable`)
      try {
        return await shards!.guard(shard, command(c as unknown as RedisCommands))
      } catch (err) {
        // A reply of Redis about the command (a script error, NOPERM...) says nothing about the shard; a lost
        // connection does, and so do the replies about the shard's own state.
        if ((err as Error).name !== 'ReplyError' || SHARD_STATE_REPLY.test((err as Error).message)) shards!.markChannelDown(key, err as Error)
        throw err
      }
    },
    publishCommand: 'SPUBLISH',
    cluster: true,
    servers: () => (source.cluster()?.nodes('master') ?? []) as RedisCommands[],
    closed: source.closed,
    log: source.log,
    prefix: source.prefix,
    channel: source.channel
  }
}
