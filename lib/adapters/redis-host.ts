/**
 * What the Redis adapter's capabilities (history, presence) need from the adapter that owns the connections.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'

export interface RedisHost {
  /** The publishing connection. @throws FST_REALTIME_ADAPTER_CLOSED after `close()` or before `init()`. */
  client: () => Redis
  /** True while both connections of the adapter are ready. */
  ready: () => boolean
  /** True once the adapter's `close()` began. */
  closed: () => boolean
  /** The app's logger, once `init()` ran. */
  log: () => FastifyBaseLogger | undefined
  /** The key prefix (option `prefix`). */
  prefix: string
  /** The pub/sub channel of `topic`: `<prefix>{<topic>}`; every key of the topic starts with it (one hash slot). */
  channel: (topic: string) => string
}
