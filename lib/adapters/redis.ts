/**
 * The Redis pub/sub adapter: every node behind a load balancer shares one Redis, and each node SUBSCRIBEs to a
 * Redis channel only while it has local subscribers of the topic (reference counted). History and presence live
 * in `redis-history.ts` and `redis-presence.ts`.
 */
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import fastifyRedis from '@fastify/redis'
import { redisClusterAdapter } from './redis-cluster.js'
import { checkClusterOptions } from './redis-cluster-options.js'
import type { RealtimeAdapter } from './adapter.js'
import { deliverEnvelope, plainEnvelope } from './redis-envelope.js'
import { redisHistory } from './redis-history.js'
import type { RedisHost } from './redis-host.js'
import type { RedisAdapterOptions } from './redis-options.js'
import { redisPresence } from './redis-presence.js'
import { topicRefs } from './topic-refs.js'
import { describe, describeClient, quit, redactUrl } from './redis-connection.js'
import { integerOption } from '../option-checks.js'
import { DEFAULT_HISTORY_META_TTL, DEFAULT_PRESENCE_TIMEOUT, DEFAULT_REDIS_PREFIX, DEFAULT_SUBSCRIBE_TIMEOUT } from '../constants.js'
import { FST_REALTIME_ADAPTER_CLOSED, FST_REALTIME_INVALID_OPTION, FST_REALTIME_UNAVAILABLE } from '../errors.js'

export type { RedisAdapterOptions }

/**
 * Creates a Redis pub/sub adapter. The publishing client is, in order: `client`, a connection opened for `url`,
 * or the `fastify.redis` client decorated by `@fastify/redis` (register it before fastify-realtime). A
 * `duplicate()` of it carries SUBSCRIBE (a subscribed connection must not run other commands) and is closed by
 * `close()`. Deliveries are forwarded as the strings published, never parsed.
 *
 * Outages: while either connection is down, `publish` rejects at once with `FST_REALTIME_UNAVAILABLE` (nothing
 * is queued: a message reaches every node or none); `subscribe` waits up to `subscribeTimeout` and then rejects
 * with it. The subscriber has no offline queue and no automatic resubscription: on reconnection the adapter
 * SUBSCRIBEs exactly the topics that still have handlers, so a topic left during the outage is not revived.
 * Connection errors are logged once per state change, never per message.
 *
 * Capabilities: `history` (redis-history.ts: one Lua script appends to the topic's stream and PUBLISHes atomically;
 * subscribers get the position out of band) and `presence` (redis-presence.ts: per-node heartbeat, dead nodes swept
 * within `presenceTimeout`). `close()` removes this node's presence members before anything else.
 *
 * With `cluster`, the adapter is the Redis Cluster one (`redis-cluster.ts`): SSUBSCRIBE/SPUBLISH on the shard
 * owning each topic's slot, the same reference counting and outage rules per shard (a publish to a shard that is
 * down answers FST_REALTIME_UNAVAILABLE at once, `status()` is `reconnecting` while any shard is down), and order
 * kept per topic (not across topics on different shards). History and presence work there too, per shard; a topic's
 * stream served by another master than the one that wrote it (failover, slot migration) starts a new epoch
 * (redis-history.ts).
 *
 * @throws FST_REALTIME_INVALID_OPTION at creation when `cluster` comes with `url` or `client`, is not a Cluster
 *   built with `shardedSubscribers: true` (or an array of `{ host, port }`), has a `keyPrefix`, or `prefix` has
 *   `{`/`}`, and at register time when a cluster master runs Redis < 7.0 (FST_REALTIME_UNAVAILABLE when the
 *   cluster cannot be reached);
 *   FST_REALTIME_INVALID_OPTION at creation when both `url` and `client` are given, when `subscribeTimeout`,
 *   `historyMetaTtl` are not integers >= 1 or `presenceTimeout` not an integer >= 5, and at register time
 *   when neither is and `@fastify/redis` is not registered; FST_REALTIME_UNAVAILABLE at register time when `url`
 *   cannot be reached (fail fast instead of a plugin timeout).
 */
export function redisAdapter (options: RedisAdapterOptions = {}): RealtimeAdapter {
  const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX
  const subscribeTimeout = integerOption(options.subscribeTimeout, DEFAULT_SUBSCRIBE_TIMEOUT, 'redisAdapter subscribeTimeout (ms)', 1)
  const presenceTimeout = integerOption(options.presenceTimeout, DEFAULT_PRESENCE_TIMEOUT, 'redisAdapter presenceTimeout (ms)', 5)
  const historyMetaTtl = integerOption(options.historyMetaTtl, DEFAULT_HISTORY_META_TTL, 'redisAdapter historyMetaTtl (ms)', 1)
  if (typeof prefix !== 'string') throw new FST_REALTIME_INVALID_OPTION('redisAdapter prefix must be a string')
  if (options.url !== undefined && options.client !== undefined) {
    throw new FST_REALTIME_INVALID_OPTION('redisAdapter accepts either url or client, not both')
  }
  if (options.url !== undefined && (typeof options.url !== 'string' || !REDIS_URL.test(options.url))) {
    throw new FST_REALTIME_INVALID_OPTION(`redisAdapter url must be a redis:// or rediss:// URL, got ${JSON.stringify(options.url)}`)
  }
  if (options.cluster !== undefined) {
    if (options.url !== undefined || options.client !== undefined) {
      throw new FST_REALTIME_INVALID_OPTION('redisAdapter accepts cluster alone: drop url and client (the cluster carries publishing and subscribing)')
    }
    checkClusterOptions(options.cluster, prefix)
    return redisClusterAdapter({ cluster: options.cluster, prefix, subscribeTimeout, presenceTimeout, historyMetaTtl })
  }

  let pub: Redis | undefined = options.client
  let sub: Redis | undefined
  let log: FastifyBaseLogger | undefined
  let closed = false
  let closing: Promise<void> | undefined
  /** True when the adapter created the publishing client (option `url`): close() quits it. */
  let ownsClient = false
  let down = false
  /** The subscriber was ready once already: its next 'ready' is a reconnection. */
  let subscribedBefore = false
  let reconnectListener: (() => void) | undefined

  const channel = (topic: string): string => `${prefix}{${topic}}`

  function onMessage (key: string, message: string): void {
    const handlers = topics.handlers(key)
    if (handlers !== undefined) deliverEnvelope(handlers, message, key, log)
  }

  function onError (err: Error): void {
    if (down || closed) return
    down = true
    log?.warn({ err }, 'fastify-realtime: Redis connection lost; publishing answers UNAVAILABLE until it is back')
  }

  function onSubscriberReady (): void {
    const keys = [...topics.keys()]
    if (down) log?.info({ topics: keys.length }, 'fastify-realtime: Redis connection restored; subscribing again')
    down = false
    const again = subscribedBefore
    subscribedBefore = true
    const restored = keys.length > 0 ? sub!.subscribe(...keys) : Promise.resolve()
    restored.then(() => { if (again) reconnected() }, (err: unknown) => onError(err as Error))
  }

  /** After an outage: deliveries published meanwhile were missed; the history listener catches up from streams. */
  function reconnected (): void {
    try {
      reconnectListener?.()
    } catch (err) {
      log?.error({ err }, 'fastify-realtime: history reconnect listener threw')
    }
  }

  function subscriber (): Redis {
    if (sub === undefined) {
      if (pub === undefined) throw new FST_REALTIME_INVALID_OPTION('redisAdapter has no Redis client')
      // The url client got this listener before connecting; the others get it here, once.
      if (!pub.listeners('error').includes(onError)) pub.on('error', onError)
      sub = pub.duplicate({ lazyConnect: false, autoResubscribe: false, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
      sub.on('message', onMessage)
      sub.on('error', onError)
      sub.on('ready', onSubscriberReady)
    }
    return sub
  }

  /** Resolves when `client` is ready, at most `subscribeTimeout` ms from now. @throws FST_REALTIME_UNAVAILABLE */
  async function whenReady (client: Redis, role: string): Promise<void> {
    if (client.status === 'ready') return
    // An app client built with lazyConnect waits for its first command: connect it now (errors arrive as events).
    if (client.status === 'wait') client.connect().catch(() => {})
    let cause: Error | undefined
    const remember = (err: Error): void => { cause ??= err }
    client.on('error', remember)
    try {
      await once(client, 'ready', { signal: AbortSignal.timeout(subscribeTimeout) })
    } catch {
      const why = cause === undefined ? `not ready within ${subscribeTimeout} ms` : describe(cause)
      throw new FST_REALTIME_UNAVAILABLE(`the ${role} Redis connection (${describeClient(client)}) is not ready: ${why}`)
    } finally {
      client.off('error', remember)
    }
  }

  function connected (): boolean {
    return pub?.status === 'ready' && sub?.status === 'ready'
  }

  async function subscribeKey (key: string): Promise<void> {
    const s = subscriber()
    if (s.status !== 'ready') {
      try {
        await once(s, 'ready', { signal: AbortSignal.timeout(subscribeTimeout) })
      } catch {
        throw new FST_REALTIME_UNAVAILABLE(`no Redis connection within ${subscribeTimeout} ms`)
      }
    }
    try {
      await s.subscribe(key)
    } catch (err) {
      throw new FST_REALTIME_UNAVAILABLE((err as Error).message)
    }
  }

  const topics = topicRefs({
    subscribe: subscribeKey,
    // While the subscriber is down there is nothing to release: on reconnection only the topics left are subscribed.
    async release (key) {
      if (sub?.status === 'ready') await sub.unsubscribe(key).catch((err: unknown) => onError(err as Error))
    },
    closed: () => closed
  })

  const host: RedisHost = {
    async run (_key, command) {
      if (closed || pub === undefined) throw new FST_REALTIME_ADAPTER_CLOSED()
      if (!connected()) throw new FST_REALTIME_UNAVAILABLE('Redis is unreachable')
      return await command(pub)
    },
    publishCommand: 'PUBLISH',
    cluster: false,
    servers: () => pub === undefined ? [] : [pub],
    closed: () => closed,
    log: () => log,
    prefix,
    channel
  }
  const history = redisHistory(host, historyMetaTtl)
  const presence = redisPresence(host, presenceTimeout)

  return {
    history: { ...history, onReconnect (listener) { reconnectListener = listener } },
    presence: { start: presence.start, add: presence.add, remove: presence.remove, list: presence.list, onChange: presence.onChange },

    async init (fastify: FastifyInstance) {
      log = fastify.log
      if (options.url !== undefined) {
        // No offline queue and no retry of in-flight commands: a publish is answered now, never replayed later.
        const client = new Redis(options.url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
        // ioredis rejects connect() with a bare "Connection is closed."; the cause arrives as an 'error' event first.
        let cause: Error | undefined
        const remember = (err: Error): void => { cause ??= err }
        client.on('error', remember)
        try {
          await client.connect()
        } catch (err) {
          client.disconnect()
          throw new FST_REALTIME_UNAVAILABLE(`cannot connect to Redis at ${redactUrl(options.url)}: ${describe(cause ?? err as Error)}`)
        } finally {
          client.off('error', remember)
        }
        client.on('error', onError)
        // @fastify/redis in a private context: the app's own fastify.redis stays free. close() quits the client
        // (or drops it when Redis is unreachable: QUIT would reject and fail the app's close).
        await fastify.register(async function realtimeRedis (child) {
          await child.register(fastifyRedis, { client, closeClient: false })
        })
        pub = client
        ownsClient = true
      } else if (pub === undefined) {
        if (!fastify.hasDecorator('redis')) {
          throw new FST_REALTIME_INVALID_OPTION('redisAdapter() needs { url }, { client } or @fastify/redis registered before fastify-realtime')
        }
        pub = fastify.redis
      }
      // ready() means ready: both the publishing and the subscribing connection are up before register resolves.
      await Promise.all([whenReady(pub, 'publishing'), whenReady(subscriber(), 'subscribing')])
    },

    status () {
      if (closed) return 'closed'
      return connected() ? 'ready' : 'reconnecting'
    },

    async subscribe (topic, handler) {
      if (closed) throw new FST_REALTIME_ADAPTER_CLOSED()
      await topics.add(channel(topic), handler)
    },

    async unsubscribe (topic, handler) {
      await topics.remove(channel(topic), handler)
    },

    async publish (topic, message) {
      if (closed || pub === undefined) throw new FST_REALTIME_ADAPTER_CLOSED()
      if (!connected()) throw new FST_REALTIME_UNAVAILABLE('Redis is unreachable')
      try {
        await pub.publish(channel(topic), plainEnvelope(message))
      } catch (err) {
        throw new FST_REALTIME_UNAVAILABLE((err as Error).message)
      }
    },

    close () {
      closing ??= (async () => {
        await presence.close() // this node's members first, while the connection still works
        closed = true
        topics.clear()
        pub?.removeListener('error', onError)
        if (sub !== undefined) {
          sub.removeListener('message', onMessage)
          await quit(sub)
        }
        if (ownsClient && pub !== undefined) await quit(pub)
      })()
      return closing
    }
  }
}

/** A redis:// or rediss:// URL (ioredis also takes unix socket paths; pass a `client` for those). */
const REDIS_URL = /^rediss?:\/\/\S*$/
