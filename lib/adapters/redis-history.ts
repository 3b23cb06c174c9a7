/**
 * History of the Redis adapters: one Redis Stream per topic whose entry ids are the offsets, a meta hash with the
 * epoch and the top offset, and one Lua script that appends and publishes atomically (Centrifugo's method,
 * centrifugal/centrifuge `internal/redis_lua/broker_history_add_stream.lua`). Every key of a topic and its pub/sub
 * channel share the Redis Cluster hash tag `{<topic>}`, so on a cluster the scripts run on the master owning the
 * topic's slot (routed by their first key) and fan out with SPUBLISH.
 *
 * Epochs across a cluster failover: replication is asynchronous, so a promoted replica may lack the last appends
 * its master acknowledged (and delivered) before it died; continuing under the same epoch would reuse their
 * offsets for other messages, a silent gap for a client recovering with `since`. On a cluster the meta hash
 * records the writer (`w`: the `CLUSTER MYID` of the master that ran the script), and both scripts start a new
 * epoch when another master serves the topic: after any failover (graceful too) or slot migration, a client
 * recovering from before it gets `recovered: false`, never a gap.
 */
import { FST_REALTIME_ADAPTER_CLOSED, FST_REALTIME_UNAVAILABLE } from '../errors.js'
import { newEpoch, type HistoryCapability, type HistoryEntry, type StreamPosition } from './history.js'
import type { RedisCommands, RedisHost } from './redis-host.js'

/**
 * The epoch check both scripts start with. ARGV[1] = '1' on a cluster (compare the recorded writer with this
 * master), '' on a single Redis; ARGV[2] = a fresh epoch. A meta hash that is missing, or was written by another
 * master, takes the fresh epoch and restarts at offset 0 (the stream of the old epoch is deleted, or XADD would
 * refuse ids below its top). Leaves `epoch` and `top` set.
 */
const EPOCH = `
local meta = redis.call('HMGET', KEYS[2], 'e', 's', 'w')
local epoch = meta[1]
local top = tonumber(meta[2]) or 0
local writer = false
if ARGV[1] == '1' then writer = redis.call('CLUSTER', 'MYID') end
if not epoch or (writer and meta[3] ~= writer) then
  epoch = ARGV[2]
  top = 0
  redis.call('HSET', KEYS[2], 'e', epoch)
  redis.call('HDEL', KEYS[2], 's')
  if writer then redis.call('HSET', KEYS[2], 'w', writer) end
  redis.call('DEL', KEYS[1])
end
`

/**
 * KEYS: stream, meta. ARGV: writer check, a fresh epoch (see EPOCH), message, size, ttl (ms), pub/sub channel,
 * meta ttl (ms), publish command (PUBLISH or SPUBLISH). The published string is `\x01<offset> <epoch> <message>`.
 * Returns { offset, epoch }.
 */
const APPEND = EPOCH + `
local offset = redis.call('HINCRBY', KEYS[2], 's', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[7])
if offset == 1 then redis.call('DEL', KEYS[1]) end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], offset, 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call(ARGV[8], ARGV[6], '\\1' .. offset .. ' ' .. epoch .. ' ' .. ARGV[3])
return { offset, epoch }
`

/**
 * KEYS: stream, meta. ARGV: writer check, a fresh epoch (see EPOCH), since (exclusive), limit, meta ttl (ms).
 * A topic without meta (or from another writer) gets the fresh epoch now, so the position read is the one the next
 * append continues from. Returns { top offset, epoch, XRANGE entries }.
 */
const READ = EPOCH + `
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local entries = {}
if tonumber(ARGV[4]) > 0 then
  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[3], '+', 'COUNT', ARGV[4])
end
return { top, epoch, entries }
`

/** The settings `recoveryWarnings` reads. */
const CHECKED_SETTINGS = ['save', 'appendonly', 'appendfsync', 'maxmemory-policy']

type XEntry = [id: string, fields: string[]]

interface HistoryCommands {
  realtimeHistoryAppend: (stream: string, meta: string, writerCheck: string, epoch: string, message: string, size: number,
    ttl: number, channel: string, metaTtl: number, publish: string) => Promise<[number, string]>
  realtimeHistoryRead: (stream: string, meta: string, writerCheck: string, epoch: string, since: number, limit: number,
    metaTtl: number) => Promise<[number, string, XEntry[]]>
}

/**
 * Defines the two scripts on `client` (idempotent; ioredis runs EVALSHA and falls back to EVAL after a restart;
 * a Cluster sends them to the master of their first key's slot).
 */
function commands (client: RedisCommands): RedisCommands & HistoryCommands {
  const c = client as RedisCommands & Partial<HistoryCommands>
  if (c.realtimeHistoryAppend === undefined) {
    client.defineCommand('realtimeHistoryAppend', { numberOfKeys: 2, lua: APPEND })
    client.defineCommand('realtimeHistoryRead', { numberOfKeys: 2, lua: READ, readOnly: false })
  }
  return client as RedisCommands & HistoryCommands
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

/** Creates the history capability of `redisAdapter()` (single Redis or cluster) over the adapter's connections. */
export function redisHistory (host: RedisHost, metaTtl: number): HistoryCapability {
  const streamKey = (topic: string): string => host.channel(topic) + ':s'
  const metaKey = (topic: string): string => host.channel(topic) + ':m'
  const writerCheck = host.cluster ? '1' : ''

  /** Runs a history command; a failure of Redis (not ours) becomes FST_REALTIME_UNAVAILABLE. */
  async function run<T> (topic: string, command: (c: RedisCommands & HistoryCommands) => Promise<T>): Promise<T> {
    if (host.closed()) throw new FST_REALTIME_ADAPTER_CLOSED()
    try {
      return await host.run(streamKey(topic), async (client) => await command(commands(client)))
    } catch (err) {
      if (typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('FST_REALTIME_')) throw err
      throw new FST_REALTIME_UNAVAILABLE((err as Error).message)
    }
  }

  return {
    async start () {
      const warnings = new Set<string>()
      try {
        // One parameter per call: CONFIG GET takes several only from Redis 7. Replies are [name, value] (RESP2)
        // or { name: value } (RESP3). On a cluster every master is asked.
        await Promise.all(host.servers().map(async (server) => {
          const config: Record<string, string> = {}
          const replies = await Promise.all(CHECKED_SETTINGS.map((name) => server.call('CONFIG', 'GET', name)))
          for (const reply of replies as Array<string[] | Record<string, string>>) {
            const pairs = Array.isArray(reply) ? reply : Object.entries(reply).flat()
            for (let i = 0; i + 1 < pairs.length; i += 2) config[pairs[i]!] = pairs[i + 1]!
          }
          for (const warning of recoveryWarnings(config)) warnings.add(warning)
        }))
      } catch (err) {
        host.log()?.info({ err }, 'fastify-realtime: CONFIG GET is not allowed; cannot check the Redis settings history recovery relies on (see docs/recovery.md)')
        return
      }
      for (const warning of warnings) {
        host.log()?.warn({ redis: 'history' }, `fastify-realtime: ${warning} (see docs/recovery.md)`)
      }
    },

    async publish (topic, message, options) {
      const reply = await run(topic, (c) => c.realtimeHistoryAppend(streamKey(topic), metaKey(topic), writerCheck, newEpoch(),
        message, options.size, options.ttl, host.channel(topic), metaTtl, host.publishCommand))
      const position: StreamPosition = { offset: Number(reply[0]), epoch: String(reply[1]) }
      return position
    },

    async read (topic, query) {
      const reply = await run(topic, (c) => c.realtimeHistoryRead(streamKey(topic), metaKey(topic), writerCheck, newEpoch(),
        query.since ?? 0, query.limit, metaTtl))
      const messages: HistoryEntry[] = reply[2].map(([id, fields]) => ({ offset: Number.parseInt(id, 10), message: fields[1]! }))
      return { offset: Number(reply[0]), epoch: String(reply[1]), messages }
    }
  }
}
