/**
 * Example Node client: joins a channel, sends a chat message every second, prints what it receives;
 * Ctrl-C closes with 1000 and exits.
 *
 *   npx tsx examples/client.ts --url ws://127.0.0.1:3000/ws --channel lobby --device node-1
 */
import { parseArgs } from 'node:util'
import WebSocket from 'ws'

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.WS_URL ?? 'ws://127.0.0.1:3000/ws' },
    channel: { type: 'string', default: 'lobby' },
    device: { type: 'string' },
    interval: { type: 'string', default: '1000' }
  }
})

const url = new URL(values.url)
if (values.device !== undefined) url.searchParams.set('deviceId', values.device)
const ws = new WebSocket(url)
let timer: NodeJS.Timeout | undefined
let n = 0

ws.on('message', (data) => {
  const frame = JSON.parse(data.toString())
  console.log('<-', JSON.stringify(frame))
  if (frame.type === 'welcome') ws.send(JSON.stringify({ type: 'join', channel: values.channel, id: 'join' }))
  if (frame.type === 'joined') {
    timer = setInterval(() => {
      n++
      ws.send(JSON.stringify({
        type: 'action', channel: values.channel, action: 'chat.message', payload: { text: `message ${n}` }, id: n
      }))
    }, Number(values.interval))
  }
})
ws.on('close', (code, reason) => {
  clearInterval(timer)
  console.log(`closed ${code} ${reason.toString()}`)
  process.exit(0)
})
ws.on('error', (err) => {
  console.error('error:', err.message)
  process.exitCode = 1
})
process.once('SIGINT', () => {
  clearInterval(timer)
  ws.close(1000, 'bye')
})
