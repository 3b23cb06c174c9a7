/**
 * Options of `redisAdapter()`, with their units and defaults.
 */
import type { Cluster, Redis } from 'ioredis'
import type { RedisClusterNode } from './redis-cluster-options.js'

/** Options of `redisAdapter()`. Give at most one of `url`, `client` and `cluster`. */
export interface RedisAdapterOptions {
  /**
   * Redis URL (`redis://127.0.0.1:6379`). The adapter registers `@fastify/redis` for it in a private context,
   * so the app's own `fastify.redis` is untouched, and the connection is closed with the app.
   */
  url?: string
  /** An ioredis client to publish with. Never closed by the adapter (the app owns it). */
  client?: Redis
  /**
   * Prefix of every Redis channel and key name, so several apps can share one Redis. Default `'realtime:'`.
   * A topic's channel is `<prefix>{<topic>}`, and its keys start with that (one Redis Cluster hash slot per topic).
   */
  prefix?: string
  /** Longest wait for Redis, in ms, when subscribing while it is unreachable. Default 2000. */
  subscribeTimeout?: number
  /**
   * Longest time, in ms, the presence members of a node that died without cleaning up stay counted. The node
   * heartbeats every fifth of it. Default 15000.
   */
  presenceTimeout?: number
  /**
   * Time in ms a topic's stream position (epoch, top offset) is kept after its last publish or read; past it the
   * topic starts a new epoch. Must outlast every history `ttl`. Default 2592000000 (30 days).
   */
  historyMetaTtl?: number
  /**
   * A Redis Cluster (Redis >= 7.0) carried by sharded pub/sub (SSUBSCRIBE/SPUBLISH): the app's ioredis `Cluster`
   * created with `{ shardedSubscribers: true }` and no `keyPrefix` (never closed by the adapter), or its start
   * nodes `[{ host, port }, ...]` (the adapter creates the Cluster and closes it with the app). Channels are then
   * `<prefix>{<topic>}`. See the README section "Redis Cluster".
   */
  cluster?: Cluster | RedisClusterNode[]
}
