/**
 * What the Redis adapters' capabilities (history, presence) need from the adapter that owns the connections: the
 * single-Redis adapter (redis.ts) and the Redis Cluster adapter (redis-cluster.ts) each provide one.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'

/**
 * The commands the capabilities send, as both an ioredis `Redis` and a `Cluster` offer them (a Cluster routes each
 * command, and each script defined with `defineCommand`, by the slot of its first key).
 */
export type RedisCommands = Pick<Redis, 'defineCommand' | 'call' | 'sadd' | 'srem' | 'smembers' | 'del' | 'zrem' | 'hvals' | 'spublish'>

/** What one Redis adapter gives its history and presence capabilities: where to run commands, and its state. */
export interface RedisHost {
  /**
   * Runs `command` on the connection that serves the slot of `key` and settles like it. Rejects at once with
   * FST_REALTIME_ADAPTER_CLOSED after `close()` (or before `init()`), with FST_REALTIME_UNAVAILABLE while that
   * connection (single Redis) or the shard owning the slot (cluster) is down, and with the cause as soon as the
   * shard goes down while the command is in flight: never queued without bound. Other rejections are the
   * command's own.
   */
  run: <T>(key: string, command: (client: RedisCommands) => Promise<T>) => Promise<T>
  /** The command that fans a message out on a topic's channel: `PUBLISH` (single Redis) or `SPUBLISH` (cluster). */
  publishCommand: 'PUBLISH' | 'SPUBLISH'
  /**
   * True on a cluster: the history scripts record which master wrote a topic's position (`CLUSTER MYID`) and start
   * a new epoch when another master serves it (after a failover, asynchronous replication may have lost the last
   * acknowledged appends).
   */
  cluster: boolean
  /** One connection per Redis server that holds data (the single Redis, or every cluster master), for checks. */
  servers: () => RedisCommands[]
  /** True once the adapter's `close()` began. */
  closed: () => boolean
  /** The app's logger, once `init()` ran. */
  log: () => FastifyBaseLogger | undefined
  /** The key prefix (option `prefix`). */
  prefix: string
  /** The pub/sub channel of `topic`: `<prefix>{<topic>}`; every key of the topic starts with it (one hash slot). */
  channel: (topic: string) => string
}
