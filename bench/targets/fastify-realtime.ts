/**
 * Target: fastify-realtime with its defaults (memory adapter), or the Redis adapter when REDIS_URL is set (on a Redis
 * Cluster with sharded pub/sub when REDIS_CLUSTER=host:port,... is set); with
 * BENCH_HISTORY=1, history on every channel (size 100, ttl 10 min): offsets, the stream written on each publish.
 * The only action is `bench.msg` with a `{ t: number, pad: string }` payload.
 * BENCH_DEFLATE=1 turns `perMessageDeflate` on (target `fastify-realtime+deflate`).
 * BENCH_METRICS=1 turns the `metrics` option on (prom-client, a registry of its own; the target
 * `fastify-realtime+metrics` sets it), to compare S1 with metrics on and off.
 * It listens with a backlog of 4096 (README, "Sizing a node").
 */
import Fastify from 'fastify'
import Type from 'typebox'
import realtimePlugin, { memoryAdapter, redisAdapter } from '../../lib/index.js'
import { ACTION } from '../common.js'
import { host, lifecycle, port, ready, redisCluster, redisUrl } from './shared.js'

// BENCH_LOG_LEVEL=warn (or debug...) logs to stderr, which `npm run bench -- --verbose` shows.
const level = process.env.BENCH_LOG_LEVEL
const app = Fastify({ logger: level === undefined || level === '' ? false : { level, stream: process.stderr } })
let metrics
if (process.env.BENCH_METRICS === '1') {
  const client = await import('prom-client')
  metrics = { client, registry: new client.Registry(), route: '/metrics' }
}
await app.register(realtimePlugin, {
  actions: { [ACTION]: Type.Object({ t: Type.Number(), pad: Type.String() }) },
  adapter: redisCluster !== undefined
    ? redisAdapter({ cluster: redisCluster })
    : redisUrl === undefined ? memoryAdapter() : redisAdapter({ url: redisUrl }),
  history: process.env.BENCH_HISTORY === '1' ? { size: 100, ttl: 600_000 } : false,
  perMessageDeflate: process.env.BENCH_DEFLATE === '1',
  ...(metrics === undefined ? {} : { metrics })
})
lifecycle(async () => { await app.close() })
// A reconnect storm (S6) brings thousands of SYNs at once: Node's default accept queue (511) overflows and the
// kernel drops them, sending clients into their connect timeout. The kernel caps it at net.core.somaxconn.
await app.listen({ port, host, backlog: 4096 })
ready()
