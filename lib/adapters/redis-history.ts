/**
 * History of the Redis adapter: one Redis Stream per topic whose entry ids are the offsets, a meta hash with the
 * epoch and the top offset, and one Lua script that appends and PUBLISHes atomically (Centrifugo's method,
 * centrifugal/centrifuge `internal/redis_lua/broker_history_add_stream.lua`). Every key of a topic and its pub/sub
 * channel share the Redis Cluster hash tag `{<topic>}`, so the scripts run unchanged on a cluster.
 */
import type { Redis } from 'ioredis'
import { FST_REALTIME_ADAPTER_CLOSED, FST_REALTIME_UNAVAILABLE } from '../errors.js'
import { newEpoch, type HistoryCapability, type HistoryEntry, type StreamPosition } from './history.js'
import type { RedisHost } from './redis-host.js'

/**
 * KEYS: stream, meta. ARGV: message, size, ttl (ms), pub/sub channel, meta ttl (ms), a fresh epoch.
 * A meta hash that was lost takes the fresh epoch and restarts at offset 1; the stream of the lost epoch is
 * deleted then, or XADD would refuse ids below its top. The PUBLISHed string is `\x01<offset> <epoch> <message>`.
 * Returns { offset, epoch }.
 */
const APPEND = `
local epoch = redis.call('HGET', KEYS[2], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('HSET', KEYS[2], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[2], 's', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if offset == 1 then redis.call('DEL', KEYS[1]) end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[2], offset, 'd', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], '\\1' .. offset .. ' ' .. epoch .. ' ' .. ARGV[1])
return { offset, epoch }
`

/**
 * KEYS: stream, meta. ARGV: since (exclusive), limit, a fresh epoch, meta ttl (ms).
 * A topic without meta gets the fresh epoch now (and loses any orphan stream), so the position read is the one the
 * next append continues from. Returns { top offset, epoch, XRANGE entries }.
 */
const READ = `
local meta = redis.call('HMGET', KEYS[2], 'e', 's')
local epoch = meta[1]
local top = tonumber(meta[2]) or 0
if not epoch then
  epoch = ARGV[3]
  top = 0
  redis.call('HSET', KEYS[2], 'e', epoch)
  redis.call('HDEL', KEYS[2], 's')
  redis.call('DEL', KEYS[1])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local entries = {}
if tonumber(ARGV[2]) > 0 then
  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
return { top, epoch, entries }
`

/** The settings `recoveryWarnings` reads. */
const CHECKED_SETTINGS = ['save', 'appendonly', 'appendfsync', 'maxmemory-policy']

type XEntry = [id: string, fields: string[]]

interface HistoryCommands {
  realtimeHistoryAppend: (stream: string, meta: string, message: string, size: number, ttl: number, channel: string,
    metaTtl: number, epoch: string) => Promise<[number, string]>
  realtimeHistoryRead: (stream: string, meta: string, since: number, limit: number, epoch: string, metaTtl: number) =>
  Promise<[number, string, XEntry[]]>
}

/** Defines the two scripts on `client` (idempotent; ioredis runs EVALSHA and falls back to EVAL after a restart). */
function commands (client: Redis): Redis & HistoryCommands {
  const c = client as Redis & Partial<HistoryCommands>
  if (c.realtimeHistoryAppend === undefined) {
    client.defineCommand('realtimeHistoryAppend', { numberOfKeys: 2, lua: APPEND })
    client.defineCommand('realtimeHistoryRead', { numberOfKeys: 2, lua: READ, readOnly: false })
  }
  return client as Redis & HistoryCommands
}

/**
 * Redis settings under which recovery can report `recovered: true` after losing messages: snapshots restore a
 * stale position under the same epoch (offsets reused), a lazily synced AOF drops the last appends, eviction drops
 * streams. Returns one sentence per problem found in the `CONFIG GET` values given (empty: recovery is sound).
 */
export function recoveryWarnings (config: Record<string, string>): string[] {
  const warnings: string[] = []
  const aof = config.appendonly === 'yes'
  if (!aof && config.save !== undefined && config.save.trim() !== '') {
    warnings.push(`RDB snapshots (save "${config.save}") without AOF: a restart restores old stream positions under the same epoch, so clients can recover across lost messages; use no persistence or AOF with appendfsync always`)
  }
  if (aof && config.appendfsync !== undefined && config.appendfsync !== 'always') {
    warnings.push(`AOF with appendfsync ${config.appendfsync}: a crash can lose the last appends while keeping the epoch; use appendfsync always`)
  }
  if (config['maxmemory-policy'] !== undefined && config['maxmemory-policy'] !== 'noeviction') {
    warnings.push(`maxmemory-policy ${config['maxmemory-policy']}: evicted streams lose messages; use noeviction`)
  }
  return warnings
}

/** Creates the history capability of `redisAdapter()` over the adapter's publishing connection. */
export function redisHistory (host: RedisHost, metaTtl: number): HistoryCapability {
  const streamKey = (topic: string): string => host.channel(topic) + ':s'
  const metaKey = (topic: string): string => host.channel(topic) + ':m'

  function client (): Redis & HistoryCommands {
    const pub = host.client()
    if (!host.ready()) throw new FST_REALTIME_UNAVAILABLE('Redis is unreachable')
    return commands(pub)
  }

  return {
    async start () {
      const pub = host.client()
      const config: Record<string, string> = {}
      try {
        // One parameter per call: CONFIG GET takes several only from Redis 7. Replies are [name, value] (RESP2)
        // or { name: value } (RESP3).
        const replies = await Promise.all(CHECKED_SETTINGS.map((name) => pub.call('CONFIG', 'GET', name)))
        for (const reply of replies as Array<string[] | Record<string, string>>) {
          const pairs = Array.isArray(reply) ? reply : Object.entries(reply).flat()
          for (let i = 0; i + 1 < pairs.length; i += 2) config[pairs[i]!] = pairs[i + 1]!
        }
      } catch (err) {
        host.log()?.info({ err }, 'fastify-realtime: CONFIG GET is not allowed; cannot check the Redis settings history recovery relies on (see docs/recovery.md)')
        return
      }
      for (const warning of recoveryWarnings(config)) {
        host.log()?.warn({ redis: 'history' }, `fastify-realtime: ${warning} (see docs/recovery.md)`)
      }
    },

    async publish (topic, message, options) {
      if (host.closed()) throw new FST_REALTIME_ADAPTER_CLOSED()
      const c = client()
      let reply: [number, string]
      try {
        reply = await c.realtimeHistoryAppend(streamKey(topic), metaKey(topic), message, options.size, options.ttl,
          host.channel(topic), metaTtl, newEpoch())
      } catch (err) {
        throw new FST_REALTIME_UNAVAILABLE((err as Error).message)
      }
      const position: StreamPosition = { offset: Number(reply[0]), epoch: String(reply[1]) }
      return position
    },

    async read (topic, query) {
      if (host.closed()) throw new FST_REALTIME_ADAPTER_CLOSED()
      const c = client()
      let reply: [number, string, XEntry[]]
      try {
        reply = await c.realtimeHistoryRead(streamKey(topic), metaKey(topic), query.since ?? 0, query.limit, newEpoch(), metaTtl)
      } catch (err) {
        throw new FST_REALTIME_UNAVAILABLE((err as Error).message)
      }
      const messages: HistoryEntry[] = reply[2].map(([id, fields]) => ({ offset: Number.parseInt(id, 10), message: fields[1]! }))
      return { offset: Number(reply[0]), epoch: String(reply[1]), messages }
    }
  }
}
