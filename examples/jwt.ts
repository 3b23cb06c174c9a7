/**
 * Authentication with @fastify/jwt: the token travels in the query string (`/ws?token=...`) or as a WebSocket
 * subprotocol (`new WebSocket(url, ['bearer', token])`, for clients that must keep it out of URLs and logs).
 * `authenticate` verifies it before the 101 and binds the connection to the token's subject as deviceId;
 * `authorizeJoin` lets a user join `lobby` and their own `user:<sub>` channel only.
 *
 *   npx tsx examples/jwt.ts           # then: curl -XPOST 127.0.0.1:3000/token -d '{"user":"ada"}' -H 'content-type: application/json'
 */
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import Type from 'typebox'
import realtimePlugin from '../lib/index.js'

interface Claims { sub: string }

/** Reads the token from `?token=` or from the subprotocols `bearer, <token>`. */
function tokenOf (request: FastifyRequest): string | undefined {
  const query = (request.query as { token?: string }).token
  if (query !== undefined) return query
  const protocols = request.headers['sec-websocket-protocol']?.split(',').map((p) => p.trim()) ?? []
  const i = protocols.indexOf('bearer')
  return i === -1 ? undefined : protocols[i + 1]
}

export async function buildJwtApp (secret: string): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
  await app.register(fastifyJwt, { secret })
  await app.register(realtimePlugin, {
    actions: { 'chat.message': Type.Object({ text: Type.String({ minLength: 1, maxLength: 4096 }) }) },
    authenticate: async (request) => {
      const token = tokenOf(request)
      if (token === undefined) throw new Error('missing token')
      const { sub } = app.jwt.verify<Claims>(token) // throws on a bad or expired token: 401, no upgrade
      return { deviceId: sub, user: sub }
    },
    authorizeJoin: (connection, channel) => channel === 'lobby' || channel === `user:${(connection.auth as { user: string }).user}`,
    handleProtocols: (protocols) => protocols.has('bearer') ? 'bearer' : false
  })
  // Demo only: a real app issues tokens after a login.
  app.post('/token', { schema: { body: Type.Object({ user: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) }) } }, async (request) => {
    return { token: app.jwt.sign({ sub: (request.body as { user: string }).user }, { expiresIn: '1h' }) }
  })
  return app
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const app = await buildJwtApp(process.env.JWT_SECRET ?? 'change-me-in-production-please')
  process.once('SIGINT', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
  await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
}
