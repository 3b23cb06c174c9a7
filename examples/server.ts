/**
 * Example server: `npm run example` (PORT 3000, HOST 127.0.0.1). In-memory adapter by default; set REDIS_URL to
 * run several nodes sharing one Redis. Serves a chat page at `/`.
 */
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import fastifyStatic from '@fastify/static'
import Type from 'typebox'
import realtimePlugin, { memoryAdapter, redisAdapter } from '../lib/index.js'

export const actions = {
  'chat.message': Type.Object({ text: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false })
}

declare module '../lib/index.js' {
  interface RealtimeActions { 'chat.message': typeof actions['chat.message'] }
}

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const redisUrl = process.env.REDIS_URL === '' ? undefined : process.env.REDIS_URL // REDIS_URL= (empty) means unset

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })

await app.register(fastifyStatic, { root: fileURLToPath(new URL('./public/', import.meta.url)) })
await app.register(realtimePlugin, {
  actions,
  adapter: redisUrl === undefined ? memoryAdapter() : redisAdapter({ url: redisUrl }),
  healthRoute: '/health' // 200 {"status":"ok",...} while the adapter is up, 503 when degraded: for load balancers
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
app.log.info(`chat page: http://${host}:${port}/  adapter: ${redisUrl === undefined ? 'memory' : 'redis'}`)
