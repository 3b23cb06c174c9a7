/**
 * The Lua scripts of the Redis presence (redis-presence.ts): one membership update per topic, one heartbeat per
 * node. Each touches the keys of one hash slot only, so both run unchanged on a Redis Cluster.
 */
import type { RedisCommands } from './redis-host.js'

/**
 * KEYS: this node's connections of the topic, device counts, device members.
 * ARGV[1] = 'add' (connId, deviceId, member JSON), 'remove' (connId) or 'replace' (connId, deviceId, member JSON
 * triples: the node's whole membership of the topic; none = the node leaves the topic). Adds go before removes, so
 * a device that keeps a connection through a replace neither leaves nor joins. Returns { joins, leaves } as
 * member JSON strings.
 */
const UPDATE = `
local conns, counts, members = KEYS[1], KEYS[2], KEYS[3]
local joins, leaves = {}, {}
local function add (conn, device, member)
  if redis.call('HSETNX', conns, conn, device) == 1 then
    if redis.call('HINCRBY', counts, device, 1) == 1 then
      redis.call('HSET', members, device, member)
      joins[#joins + 1] = member
    end
  end
end
local function remove (conn)
  local device = redis.call('HGET', conns, conn)
  if not device then return end
  redis.call('HDEL', conns, conn)
  if redis.call('HINCRBY', counts, device, -1) <= 0 then
    redis.call('HDEL', counts, device)
    local member = redis.call('HGET', members, device)
    redis.call('HDEL', members, device)
    if member then leaves[#leaves + 1] = member end
  end
end
local mode = ARGV[1]
if mode == 'add' then
  add(ARGV[2], ARGV[3], ARGV[4])
elseif mode == 'remove' then
  remove(ARGV[2])
else
  local keep = {}
  for i = 2, #ARGV, 3 do
    add(ARGV[i], ARGV[i + 1], ARGV[i + 2])
    keep[ARGV[i]] = true
  end
  local old = redis.call('HKEYS', conns)
  for _, conn in ipairs(old) do
    if not keep[conn] then remove(conn) end
  end
end
return { joins, leaves }
`

/**
 * KEYS: the nodes sorted set. ARGV: node id, dead-after (ms). Records the heartbeat at Redis' clock and returns
 * { 1 when the node was not registered (first beat, or swept as dead), up to 16 dead nodes }.
 */
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now, ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]), 'LIMIT', 0, 16)
return { added, dead }
`

/** The two scripts as ioredis commands (after `presenceCommands`). */
export interface PresenceCommands {
  realtimePresenceUpdate: (conns: string, counts: string, members: string, ...args: string[]) => Promise<[string[], string[]]>
  realtimePresenceHeartbeat: (nodes: string, node: string, deadAfter: number) => Promise<[number, string[]]>
}

/** Defines the presence scripts on `client` (idempotent; on a Cluster each runs on the master of its first key). */
export function presenceCommands (client: RedisCommands): RedisCommands & PresenceCommands {
  const c = client as RedisCommands & Partial<PresenceCommands>
  if (c.realtimePresenceUpdate === undefined) {
    client.defineCommand('realtimePresenceUpdate', { numberOfKeys: 3, lua: UPDATE })
    client.defineCommand('realtimePresenceHeartbeat', { numberOfKeys: 1, lua: HEARTBEAT })
  }
  return client as RedisCommands & PresenceCommands
}
