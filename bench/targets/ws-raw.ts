/**
 * Target: the `ws` package alone, speaking the same JSON frames as fastify-realtime (welcome, join -> joined,
 * action -> message to every member + ack). A Map channel -> Set of sockets and `send` in a loop: the floor
 * a hand-written server would reach, without validation, limits or heartbeats.
 *
 * BENCH_WS_MODE=prebuilt builds the WebSocket frame once per message (ws `Sender.frame`) and writes it to
 * every member with `ws._sender.sendFrame`, as Socket.IO's in-memory adapter does (`wsPreEncodedFrame`).
 * BENCH_WS_MODE=prebuilt-write goes one step further: header and payload concatenated once into one Buffer,
 * written with `ws._socket.write` (one write() per member instead of cork + two writes + uncork -> writev).
 * BENCH_WS_MODE=deflate offers ws's own permessage-deflate (per socket: each send() compressed for that socket), with
 * no context takeover either way and zlib level 1, the settings of the plugin's perMessageDeflate.
 * With REDIS_URL, messages go through Redis pub/sub (ioredis): "ws + ioredis", one PUBLISH per message and
 * one SUBSCRIBE per channel per node.
 */
import { createRequire } from 'node:module'
import { WebSocketServer, type WebSocket } from 'ws'
import { Redis } from 'ioredis'
import { host, lifecycle, port, ready, redisUrl } from './shared.js'

interface SenderInternals { sendFrame: (list: Buffer[], cb?: () => void) => void }
type SenderFrame = (data: Buffer, options: { fin: boolean, opcode: number, mask: boolean, readOnly: boolean, rsv1: boolean }) => Buffer[]
// @types/ws does not declare the Sender class; it is a public export of ws nonetheless.
const Sender = createRequire(import.meta.url)('ws').Sender as { frame: SenderFrame }

const mode = process.env.BENCH_WS_MODE ?? ''
const prebuilt = mode === 'prebuilt'
/** BENCH_WS_MODE=prebuilt-write: header and payload in one Buffer, written straight to the net.Socket. */
const prebuiltWrite = mode === 'prebuilt-write'
const channels = new Map<string, Set<WebSocket>>()
const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/
let counter = 0

function fanOut (channel: string, frame: string): void {
  const members = channels.get(channel)
  if (members === undefined) return
  if (prebuiltWrite) {
    const list = Sender.frame(Buffer.from(frame), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false })
    const buf = list.length === 1 ? list[0]! : Buffer.concat(list)
    for (const ws of members) {
      if (ws.readyState === 1) (ws as unknown as { _socket: { write: (b: Buffer) => boolean } })._socket.write(buf)
    }
  } else if (prebuilt) {
    const list = Sender.frame(Buffer.from(frame), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false })
    for (const ws of members) {
      if (ws.readyState === 1) (ws as unknown as { _sender: SenderInternals })._sender.sendFrame(list)
    }
  } else {
    for (const ws of members) {
      if (ws.readyState === 1) ws.send(frame)
    }
  }
}

const pub = redisUrl === undefined ? undefined : new Redis(redisUrl)
const sub = pub?.duplicate()
const PREFIX = 'bench:'
const subscriptions = new Map<string, Promise<unknown>>()
sub?.on('message', (key: string, frame: string) => fanOut(key.slice(PREFIX.length), frame))

const perMessageDeflate = mode === 'deflate'
  ? { serverNoContextTakeover: true, clientNoContextTakeover: true, zlibDeflateOptions: { level: 1 } }
  : false
const wss = new WebSocketServer({ host, port, path: '/ws', perMessageDeflate, maxPayload: 64 * 1024 })

wss.on('connection', (ws, request) => {
  const asked = new URL(request.url ?? '/', 'http://x').searchParams.get('deviceId')
  const deviceId = asked !== null && DEVICE_ID.test(asked) ? asked : `anon${++counter}`
  const joined = new Set<string>()
  ws.send(JSON.stringify({ type: 'welcome', deviceId }))
  ws.on('message', (data) => {
    let frame: { type?: string, channel?: string, action?: string, payload?: unknown, id?: number | string }
    try {
      frame = JSON.parse((data as Buffer).toString())
    } catch {
      ws.send(JSON.stringify({ type: 'error', code: 'BAD_REQUEST', message: 'Frame is not valid JSON' }))
      return
    }
    const { type, channel, id } = frame
    if (typeof channel !== 'string') return
    if (type === 'join') {
      const join = (): void => {
        let members = channels.get(channel)
        if (members === undefined) {
          members = new Set()
          channels.set(channel, members)
        }
        joined.add(channel)
        members.add(ws)
        ws.send(JSON.stringify({ type: 'joined', channel, id }))
      }
      if (sub === undefined) {
        join()
        return
      }
      // One SUBSCRIBE per channel per node; joins wait until it is active.
      let subscribing = subscriptions.get(channel)
      if (subscribing === undefined) {
        subscribing = sub.subscribe(PREFIX + channel)
        subscriptions.set(channel, subscribing)
      }
      subscribing.then(join, () => ws.send(JSON.stringify({ type: 'error', code: 'UNAVAILABLE', message: 'subscribe failed', id })))
    } else if (type === 'action') {
      if (!joined.has(channel)) {
        ws.send(JSON.stringify({ type: 'error', code: 'NOT_JOINED', message: 'join first', id }))
        return
      }
      const message = JSON.stringify({ type: 'message', channel, action: frame.action, payload: frame.payload, from: deviceId })
      if (pub !== undefined) {
        pub.publish(PREFIX + channel, message).then(() => ws.send(JSON.stringify({ type: 'ack', id })), () => {
          ws.send(JSON.stringify({ type: 'error', code: 'UNAVAILABLE', message: 'publish failed', id }))
        })
      } else {
        fanOut(channel, message)
        ws.send(JSON.stringify({ type: 'ack', id }))
      }
    }
  })
  ws.on('close', () => {
    for (const channel of joined) channels.get(channel)?.delete(ws)
  })
})

lifecycle(async () => {
  wss.close()
  for (const ws of wss.clients) ws.terminate()
  sub?.disconnect()
  pub?.disconnect()
})
wss.on('listening', ready)
