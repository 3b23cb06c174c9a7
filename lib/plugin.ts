/**
 * Plugin wiring: options, @fastify/websocket, the WebSocket route, the `realtime` decorator, heartbeat,
 * and shutdown (1001 to every socket in preClose, adapter released in onClose).
 */
import { randomUUID } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import Type from 'typebox'
import { ChannelRegistry } from './channels.js'
import { Connection, type ConnectionContext } from './connection.js'
import { CloseCode } from './constants.js'
import { resolveOptions, type RealtimePluginOptions } from './options.js'
import { DeviceId, isDeviceId } from './protocol.js'
import { createRealtime } from './realtime.js'

interface Handshake { deviceId: string, auth: unknown }

const querystring = Type.Object({ deviceId: Type.Optional(DeviceId) })

async function realtime (fastify: FastifyInstance, opts: RealtimePluginOptions<any>): Promise<void> {
  const options = resolveOptions(opts)
  const { adapter, authenticate } = options
  const log = fastify.log.child({ plugin: 'fastify-realtime' })
  await adapter.init?.(fastify)

  const connections = new Set<Connection>()
  const registry = new ChannelRegistry(adapter, log)
  const ctx: ConnectionContext = {
    adapter,
    registry,
    actions: options.actions,
    authorizeJoin: options.authorizeJoin,
    maxChannelsPerConnection: options.maxChannelsPerConnection,
    maxPayload: options.maxPayload,
    maxDepth: options.maxDepth,
    log,
    connections
  }
  const handshakes = new WeakMap<FastifyRequest, Handshake>()
  let closing = false

  if (!fastify.hasDecorator('websocketServer')) {
    // closeTimeout (ws >= 8.18) bounds each close handshake; @types/ws does not list it yet.
    const wsOptions = { maxPayload: options.maxPayload, closeTimeout: options.closeTimeout }
    await fastify.register(websocket, {
      options: wsOptions,
      // The default error handler terminate()s the socket, which drops a close frame ws already queued
      // (1009 for an oversize frame becomes 1006). ws closes the socket itself after such errors.
      errorHandler (err, _socket, request) {
        request.log.debug({ err }, 'fastify-realtime: websocket error')
      },
      // Our own preClose hook below sends 1001; this one only stops the ws server.
      preClose (done) {
        this.websocketServer.close()
        done()
      }
    })
  }

  fastify.decorate('realtime', createRealtime(adapter, options.actions, registry, connections))

  fastify.route({
    method: 'GET',
    url: options.path,
    schema: { querystring, hide: true },
    async preHandler (request, reply) {
      if (!request.ws) return
      if (closing) return reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: 'Server is shutting down' })
      const asked = (request.query as { deviceId?: string }).deviceId
      if (authenticate === undefined) {
        handshakes.set(request, { deviceId: asked ?? randomUUID(), auth: undefined })
        return
      }
      let auth
      try {
        auth = await authenticate(request)
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode === 403 ? 403 : 401
        request.log.info({ err }, 'fastify-realtime: authentication refused')
        return refuse(reply, status)
      }
      const deviceId = auth?.deviceId ?? asked ?? randomUUID()
      if ((asked !== undefined && asked !== deviceId) || !isDeviceId(deviceId)) return refuse(reply, 403)
      handshakes.set(request, { deviceId, auth })
    },
    handler (_request, reply) {
      return reply.code(426).header('upgrade', 'websocket').send({
        statusCode: 426, error: 'Upgrade Required', message: 'This endpoint accepts WebSocket connections only'
      })
    },
    wsHandler (socket, request) {
      const handshake = handshakes.get(request)!
      handshakes.delete(request)
      const connection = new Connection(ctx, socket, handshake.deviceId, handshake.auth)
      if (closing) connection.close(CloseCode.GOING_AWAY, 'server shutting down')
    }
  })

  let heartbeat: NodeJS.Timeout | undefined
  if (options.heartbeatInterval > 0) {
    heartbeat = setInterval(() => {
      for (const connection of connections) connection.heartbeat()
    }, options.heartbeatInterval)
    heartbeat.unref()
  }

  fastify.addHook('preClose', async () => {
    closing = true
    clearInterval(heartbeat)
    const closed: Promise<unknown>[] = []
    for (const connection of connections) {
      closed.push(connection.whenClosed())
      connection.close(CloseCode.GOING_AWAY, 'server shutting down')
    }
    await Promise.all(closed)
  })

  fastify.addHook('onClose', async () => {
    await adapter.close()
  })
}

function refuse (reply: FastifyReply, status: 401 | 403): FastifyReply {
  const error = status === 401 ? 'Unauthorized' : 'Forbidden'
  return reply.code(status).send({ statusCode: status, error, message: error })
}

/**
 * The fastify-realtime plugin. Registers a WebSocket route (default `/ws`) speaking protocol v1
 * (docs/protocol.md) and decorates `fastify.realtime`. Requires Fastify 5.
 * @throws FST_REALTIME_INVALID_OPTION at register time for an invalid option.
 */
export const realtimePlugin = fp(realtime, {
  name: 'fastify-realtime',
  fastify: '5.x'
})
