/**
 * Example server: `npm run example` (PORT 3000, HOST 127.0.0.1). In-memory adapter by default; set REDIS_URL to
 * run several nodes sharing one Redis, or REDIS_CLUSTER=host:port,host:port to run them on a Redis Cluster
 * (sharded pub/sub, Redis >= 7.0). Serves a chat page at `/`, Prometheus metrics at `/metrics` and the AsyncAPI
 * document of the WebSocket API at `/asyncapi.json`.
 * PRESENCE_TIMEOUT (ms, default 15000) bounds how long the devices of a node that died stay listed as online.
 */
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import fastifyStatic from '@fastify/static'
import * as promClient from 'prom-client'
import Type from 'typebox'
import realtimePlugin, { memoryAdapter, redisAdapter } from '../lib/index.js'
import { chatActions } from './actions.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const redisUrl = process.env.REDIS_URL === '' ? undefined : process.env.REDIS_URL // REDIS_URL= (empty) means unset
// REDIS_CLUSTER=127.0.0.1:7000,127.0.0.1:7001: start nodes of a Redis Cluster (any few of its nodes will do).
const redisCluster = process.env.REDIS_CLUSTER === undefined || process.env.REDIS_CLUSTER === ''
  ? undefined
  : process.env.REDIS_CLUSTER.split(',').map((node) => {
    const [host, port] = node.trim().split(':')
    return { host: host!, port: Number(port) }
  })
if (redisUrl !== undefined && redisCluster !== undefined) throw new Error('set REDIS_URL or REDIS_CLUSTER, not both')
const adapter = redisCluster !== undefined
  ? redisAdapter({ cluster: redisCluster })
  // PRESENCE_TIMEOUT (ms, default 15000): how long the members of a node that died stay listed as online.
  : redisUrl !== undefined
    ? redisAdapter({ url: redisUrl, presenceTimeout: Number(process.env.PRESENCE_TIMEOUT ?? 15_000) })
    : memoryAdapter()
const adapterName = redisCluster !== undefined ? 'redis cluster' : redisUrl !== undefined ? 'redis' : 'memory'

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })

// The app's own registry: the plugin creates its realtime_* metrics there and serves it at /metrics. Node's process
// metrics are the app's choice, not the plugin's.
const registry = new promClient.Registry()
promClient.collectDefaultMetrics({ register: registry })

await app.register(fastifyStatic, { root: fileURLToPath(new URL('./public/', import.meta.url)) })
await app.register(realtimePlugin, {
  // The chat's actions (examples/actions.ts): a relay, two handled actions and a request/response call.
  actions: chatActions(() => app.realtime),
  adapter,
  healthRoute: '/health', // 200 {"status":"ok",...} while the adapter is up, 503 when degraded: for load balancers
  // Every channel keeps its last 100 messages for 10 minutes: deliveries carry an offset, a client that re-joins with
  // `since` gets what it missed (or `recovered: false`: reload). Who is online: a snapshot, then diffs.
  // (Every adapter of the package has both; a third-party adapter without them runs the example without them.)
  history: adapter.history === undefined ? false : { size: 100, ttl: 10 * 60_000 },
  presence: adapter.presence !== undefined,
  metrics: { client: promClient, registry, route: '/metrics' },
  // View it: paste http://<host>/asyncapi.json into AsyncAPI Studio (studio.asyncapi.com).
  asyncapi: {
    info: { title: 'fastify-realtime chat example', version: '1.0.0' },
    servers: { local: { host: `${host}:${port}`, protocol: 'ws' } }
  },
  onConnect: (connection) => { app.log.info({ deviceId: connection.deviceId, id: connection.id }, 'device connected') },
  onDisconnect: (connection, { code, reason }) => {
    app.log.info({ deviceId: connection.deviceId, id: connection.id, code, reason }, 'device disconnected')
  }
})

// Kicks a device (every tab, every node): curl -XPOST localhost:3000/kick -H 'content-type: application/json' \
//   -d '{"deviceId":"alice"}'
app.post('/kick', {
  schema: { body: Type.Object({ deviceId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) }) }
}, async (request) => {
  const { deviceId } = request.body as { deviceId: string }
  await app.realtime.disconnect(deviceId, { code: 4001, reason: 'kicked' })
  return { ok: true }
})

// Publishing from an HTTP route: curl -XPOST localhost:3000/announce -H 'content-type: application/json' \
//   -d '{"channel":"lobby","text":"hello from HTTP"}'
app.post('/announce', {
  schema: { body: Type.Object({ channel: Type.String(), text: Type.String({ minLength: 1, maxLength: 4096 }) }) }
}, async (request) => {
  const { channel, text } = request.body as { channel: string, text: string }
  await app.realtime.publish(channel, 'chat.message', { text })
  return { ok: true }
})

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.log.info({ signal }, 'shutting down')
    app.close().then(() => process.exit(0), (err: unknown) => {
      app.log.error({ err }, 'shutdown failed')
      process.exit(1)
    })
  })
}

await app.listen({ port, host })
app.log.info(`chat page: http://${host}:${port}/  adapter: ${adapterName}`)
