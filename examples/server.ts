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
import realtimePlugin, { defineAction, memoryAdapter, redisAdapter, RealtimeError } from '../lib/index.js'

/** A small in-process store: the last messages of each channel (a database in a real app). */
const store = new Map<string, Array<{ id: string, at: number, from: string, text: string }>>()
let lastId = 0

const Text = Type.String({ minLength: 1, maxLength: 4096 })
/** What `app.realtime.history()` returns: the stream position and the stored messages, oldest first. */
export const HistoryReply = Type.Object({
  epoch: Type.String(),
  offset: Type.Integer(),
  messages: Type.Array(Type.Object({
    offset: Type.Integer(), action: Type.String(), payload: Type.Unknown(), from: Type.Union([Type.String(), Type.Null()])
  }))
})

export const actions = {
  // A plain relay: existing clients keep working unchanged.
  'chat.message': Type.Object({ text: Text }, { additionalProperties: false }),
  // What the server publishes for a stored message.
  'chat.stored': Type.Object({ id: Type.String(), at: Type.Integer(), from: Type.String(), text: Text }),
  // Handled: store, publish the stored form, reply with its server id and time.
  'chat.send': defineAction({
    payload: Type.Object({ text: Text }, { additionalProperties: false }),
    reply: Type.Object({ id: Type.String(), at: Type.Integer() }),
    async handler ({ connection, channel, payload }) {
      if (channel === undefined) throw new RealtimeError('CHANNEL_REQUIRED', 'chat.send needs a channel')
      const message = { id: `m${++lastId}`, at: Date.now(), from: connection.deviceId, text: payload.text }
      const list = store.get(channel) ?? []
      list.push(message)
      store.set(channel, list.slice(-100))
      await app.realtime.publish(channel, 'chat.stored', message)
      return { id: message.id, at: message.at }
    }
  }),
  // Handled, on a joined channel: its recent messages from the plugin's history (the page shows them on join, and
  // reloads them when a re-join was not recovered).
  'chat.history': defineAction({
    payload: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }, { additionalProperties: false }),
    reply: HistoryReply,
    handler: ({ channel, payload }) => {
      if (channel === undefined) throw new RealtimeError('CHANNEL_REQUIRED', 'chat.history needs a channel')
      return app.realtime.history(channel, { limit: payload.limit ?? 20 })
    }
  }),
  // Handled and channel-less: a request/response call listing the channels with recent messages.
  'rooms.recent': defineAction({
    payload: Type.Object({}),
    reply: Type.Array(Type.Object({ channel: Type.String(), messages: Type.Integer(), lastAt: Type.Integer() })),
    handler: () => [...store].map(([channel, list]) => ({ channel, messages: list.length, lastAt: list.at(-1)!.at }))
  })
}

declare module '../lib/index.js' {
  interface RealtimeActions {
    'chat.message': typeof actions['chat.message']
    'chat.stored': typeof actions['chat.stored']
  }
}

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
  actions,
  adapter,
  healthRoute: '/health', // 200 {"status":"ok",...} while the adapter is up, 503 when degraded: for load balancers
  // Every channel keeps its last 100 messages for 10 minutes: deliveries carry an offset, a client that re-joins with
  // `since` gets what it missed (or `recovered: false`: reload). Who is online: a snapshot, then diffs.
  // (The Redis Cluster adapter has neither capability yet: there the example runs without them.)
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
