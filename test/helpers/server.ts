/**
 * Starts a real Fastify server with the plugin on a free loopback port.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import Type from 'typebox'
import realtimePlugin, { type RealtimePluginOptions } from '../../lib/index.js'
import { trackServerSockets } from './wait.js'

export const actions = {
  'chat.message': Type.Object({ text: Type.String({ maxLength: 4096 }) }, { additionalProperties: false }),
  'cursor.move': Type.Object({ x: Type.Number(), y: Type.Number() })
}

export interface TestServer { app: FastifyInstance, url: string, base: string }

export async function startServer (
  options: RealtimePluginOptions<any> = {},
  setup?: (app: FastifyInstance) => void | Promise<void>,
  logger: FastifyServerOptions['logger'] = { level: process.env.LOG_LEVEL ?? 'silent' }
): Promise<TestServer> {
  const app = Fastify({ logger })
  if (setup !== undefined) await setup(app)
  await app.register(realtimePlugin, { actions, ...options })
  trackServerSockets(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${port}/ws`, base: `http://127.0.0.1:${port}` }
}
