/**
 * What makes a Redis Cluster usable by the cluster adapter, checked at register time: an ioredis `Cluster` with
 * sharded subscribers and no key prefix (or start nodes to build one), and masters running Redis >= 7.0.
 */
import type { Cluster } from 'ioredis'
import { FST_REALTIME_INVALID_OPTION } from '../errors.js'

/** A start node of a Redis Cluster. */
export interface RedisClusterNode { host: string, port: number }

/** Oldest Redis with sharded pub/sub (SSUBSCRIBE/SPUBLISH). */
const MINIMUM_MAJOR = 7

/**
 * Throws FST_REALTIME_INVALID_OPTION, with what to change, when `cluster` cannot carry sharded pub/sub for us:
 * not an ioredis `Cluster` nor a non-empty array of `{ host, port }`; a Cluster built without
 * `shardedSubscribers: true`; a Cluster with a `keyPrefix` (ioredis would prefix our channel names). Also refuses a
 * `prefix` with `{` or `}` (the topic's hash tag must be the first one in the channel name).
 */
export function checkClusterOptions (cluster: unknown, prefix: string): void {
  if (prefix.includes('{') || prefix.includes('}')) {
    throw new FST_REALTIME_INVALID_OPTION(`redisAdapter prefix must not contain { or } with a cluster (the channel is <prefix>{<topic>}), got ${JSON.stringify(prefix)}`)
  }
  if (Array.isArray(cluster)) {
    const bad = cluster.length === 0 || cluster.some((n: unknown) => {
      const node = n as Partial<RedisClusterNode> | null
      return node === null || typeof node !== 'object' || typeof node.host !== 'string' || node.host === '' ||
        !Number.isInteger(node.port) || (node.port as number) < 1 || (node.port as number) > 65535
    })
    if (bad) throw new FST_REALTIME_INVALID_OPTION(`redisAdapter cluster must be an ioredis Cluster or a non-empty array of { host, port } start nodes, got ${JSON.stringify(cluster)}`)
    return
  }
  const c = cluster as Partial<Cluster> | null
  if (c === null || typeof c !== 'object' || c.isCluster !== true) {
    throw new FST_REALTIME_INVALID_OPTION('redisAdapter cluster must be an ioredis Cluster (new Cluster(nodes, { shardedSubscribers: true })) or an array of { host, port } start nodes; for a single Redis pass { client } or { url }')
  }
  if (c.options?.shardedSubscribers !== true) {
    throw new FST_REALTIME_INVALID_OPTION('redisAdapter cluster was created without shardedSubscribers: create it with new Cluster(nodes, { shardedSubscribers: true }) (ioredis >= 6), or pass the start nodes as an array and the adapter creates it')
  }
  if (c.options.keyPrefix !== undefined && c.options.keyPrefix !== '') {
    throw new FST_REALTIME_INVALID_OPTION(`redisAdapter cluster has keyPrefix ${JSON.stringify(c.options.keyPrefix)}, which ioredis also applies to sharded channel names: remove it from the Cluster options and use the adapter's prefix option instead`)
  }
}

/**
 * The reason to refuse a node whose `INFO server` text is `info`, or undefined when it runs Redis >= 7.0
 * (sharded pub/sub). `node` (`host:port`) names it in the message.
 */
export function versionProblem (info: string, node: string): string | undefined {
  const version = /^redis_version:(\S+)/m.exec(info)?.[1]
  if (version === undefined) return `node ${node} did not report its redis_version`
  if (Number(version.split('.')[0]) >= MINIMUM_MAJOR) return undefined
  return `node ${node} runs Redis ${version}; sharded pub/sub needs Redis >= 7.0: upgrade the cluster, or use one Redis with { url }`
}

/** The start nodes of a Cluster as `host:port, ...`, for error messages. */
export function describeNodes (c: Cluster): string {
  const nodes = (c as unknown as { startupNodes?: unknown[] }).startupNodes ?? []
  return nodes.map((n) => typeof n === 'object' && n !== null ? `${(n as RedisClusterNode).host}:${(n as RedisClusterNode).port}` : String(n)).join(', ')
}
