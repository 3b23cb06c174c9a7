/**
 * Target: Socket.IO 4 on a plain node:http server, websocket transport only (no polling, no upgrade),
 * rooms and `io.to(room).emit`. Events: `join(channel, ack)` and `bench.msg(channel, payload, ack)`; each
 * member of the room receives `message` with the same object fastify-realtime sends
 * (`{ channel, action, payload, from }`). With REDIS_URL, `@socket.io/redis-adapter` over two ioredis clients.
 */
import { createServer } from 'node:http'
import { Server } from 'socket.io'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import { ACTION } from '../common.js'
import { host, lifecycle, port, ready, redisUrl } from './shared.js'

const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/
const http = createServer()
const pub = redisUrl === undefined ? undefined : new Redis(redisUrl)
const sub = pub?.duplicate()
const io = new Server(http, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 64 * 1024,
  ...(pub !== undefined && sub !== undefined ? { adapter: createAdapter(pub, sub) } : {})
})

io.on('connection', (socket) => {
  const asked = socket.handshake.query.deviceId
  const deviceId = typeof asked === 'string' && DEVICE_ID.test(asked) ? asked : socket.id
  socket.on('join', async (channel: unknown, ack: unknown) => {
    if (typeof channel !== 'string') return
    await socket.join(channel)
    if (typeof ack === 'function') ack({ channel })
  })
  socket.on(ACTION, (channel: unknown, payload: unknown, ack: unknown) => {
    if (typeof channel !== 'string' || !socket.rooms.has(channel)) {
      if (typeof ack === 'function') ack({ error: 'NOT_JOINED' })
      return
    }
    io.to(channel).emit('message', { channel, action: ACTION, payload, from: deviceId })
    if (typeof ack === 'function') ack()
  })
})

lifecycle(async () => {
  io.disconnectSockets(true)
  http.closeAllConnections()
  http.close()
  sub?.disconnect()
  pub?.disconnect()
})
http.listen(port, host, ready)
