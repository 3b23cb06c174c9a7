/**
 * The Redis pub/sub adapter: every node behind a load balancer shares one Redis, and each node SUBSCRIBEs to a
 * Redis channel only while it has local subscribers of the topic (reference counted).
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import fastifyRedis from '@fastify/redis'
import type { MessageHandler, RealtimeAdapter } from './adapter.js'
import { callHandlers } from './handlers.js'
import { DEFAULT_REDIS_PREFIX } from '../constants.js'
import { FST_REALTIME_ADAPTER_CLOSED, FST_REALTIME_INVALID_OPTION } from '../errors.js'

/** Options of `redisAdapter()`. Give at most one of `url` and `client`. */
export interface RedisAdapterOptions {
  /**
   * Redis URL (`redis://127.0.0.1:6379`). The adapter registers `@fastify/redis` for it in a private context,
   * so the app's own `fastify.redis` is untouched, and the connection is closed with the app.
   */
  url?: string
  /** An ioredis client to publish with. Never closed by the adapter (the app owns it). */
  client?: Redis
  /** Prefix of every Redis channel name, so several apps can share one Redis. Default `'realtime:'`. */
  prefix?: string
}

interface TopicEntry { handlers: Set<MessageHandler>, ready: Promise<unknown> }

/**
 * Creates a Redis pub/sub adapter. The publishing client is, in order: `client`, a connection opened for `url`,
 * or the `fastify.redis` client decorated by `@fastify/redis` (register it before fastify-realtime). A
 * `duplicate()` of it carries SUBSCRIBE (a subscribed connection must not run other commands) and is closed by
 * `close()`. Deliveries are forwarded as the strings published, never parsed.
 *
 * @throws FST_REALTIME_INVALID_OPTION at register time when both `url` and `client` are given, or neither is
 *   and `@fastify/redis` is not registered.
 */
export function redisAdapter (options: RedisAdapterOptions = {}): RealtimeAdapter {
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX
  if (typeof prefix !== 'string') throw new FST_REALTIME_INVALID_OPTION('redisAdapter prefix must be a string')
  if (options.url !== undefined && options.client !== undefined) {
    throw new FST_REALTIME_INVALID_OPTION('redisAdapter accepts either url or client, not both')
  }

  const topics = new Map<string, TopicEntry>()
  let pub: Redis | undefined = options.client
  let sub: Redis | undefined
  let log: FastifyBaseLogger | undefined
  let closed = false

  function onMessage (key: string, message: string): void {
    const entry = topics.get(key)
    if (entry !== undefined) callHandlers(entry.handlers, message, log)
  }

  function subscriber (): Redis {
    if (sub === undefined) {
      if (pub === undefined) throw new FST_REALTIME_INVALID_OPTION('redisAdapter has no Redis client')
      sub = pub.duplicate()
      sub.on('message', onMessage)
      sub.on('error', (err) => log?.warn({ err }, 'fastify-realtime: Redis subscriber error'))
    }
    return sub
  }

  return {
    async init (fastify: FastifyInstance) {
      log = fastify.log
      if (options.url !== undefined) {
        const url = options.url
        await fastify.register(async function realtimeRedis (child) {
          await child.register(fastifyRedis, { url })
          pub = child.redis
        })
      } else if (pub === undefined) {
        if (!fastify.hasDecorator('redis')) {
          throw new FST_REALTIME_INVALID_OPTION('redisAdapter() needs { url }, { client } or @fastify/redis registered before fastify-realtime')
        }
        pub = fastify.redis
      }
      subscriber()
    },

    async subscribe (topic, handler) {
      if (closed) throw new FST_REALTIME_ADAPTER_CLOSED()
      const key = prefix + topic
      let entry = topics.get(key)
      if (entry === undefined) {
        entry = { handlers: new Set(), ready: subscriber().subscribe(key) }
        topics.set(key, entry)
      }
      entry.handlers.add(handler)
      try {
        await entry.ready
      } catch (err) {
        entry.handlers.delete(handler)
        if (entry.handlers.size === 0 && topics.get(key) === entry) topics.delete(key)
        throw err
      }
    },

    async unsubscribe (topic, handler) {
      const key = prefix + topic
      const entry = topics.get(key)
      if (entry === undefined || !entry.handlers.delete(handler)) return
      if (entry.handlers.size > 0) return
      topics.delete(key)
      if (sub !== undefined && !closed) await sub.unsubscribe(key)
    },

    async publish (topic, message) {
      if (closed || pub === undefined) throw new FST_REALTIME_ADAPTER_CLOSED()
      await pub.publish(prefix + topic, message)
    },

    async close () {
      if (closed) return
      closed = true
      topics.clear()
      if (sub !== undefined) {
        sub.removeListener('message', onMessage)
        try {
          await sub.quit()
        } catch {
          sub.disconnect()
        }
      }
    }
  }
}
