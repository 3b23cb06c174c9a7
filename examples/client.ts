/**
 * Example Node client, on the typed client of fastify-realtime/client: joins a channel, sends a chat message every
 * second, prints what it receives and its connection events (it reconnects and re-joins by itself when the server
 * restarts); Ctrl-C closes with 1000 and exits.
 *
 *   npx tsx examples/client.ts --url ws://127.0.0.1:3000/ws --channel lobby --device node-1
 */
import { parseArgs } from 'node:util'
import { createClient, RealtimeError } from '../lib/client/index.js'
import type { ChatActions } from './actions.js' // the server's action map, as a type only

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.WS_URL ?? 'ws://127.0.0.1:3000/ws' },
    channel: { type: 'string', default: 'lobby' },
    device: { type: 'string' },
    interval: { type: 'string', default: '1000' }
  }
})
const channel = values.channel
const interval = Number(values.interval)
if (!Number.isSafeInteger(interval) || interval < 1) throw new TypeError(`--interval must be a positive integer (ms), got ${values.interval}`)

const client = createClient<ChatActions>(values.url, values.device === undefined ? {} : { deviceId: values.device })
let timer: NodeJS.Timeout | undefined
let n = 0

client.addEventListener('open', ({ detail }) => {
  console.log(`${detail.reconnected ? 'reconnected' : 'connected'} as ${detail.deviceId}`)
})
client.addEventListener('close', ({ detail }) => {
  console.log(`closed ${detail.code} ${detail.reason}${detail.willReconnect ? ' (will reconnect)' : ''}`)
  if (!detail.willReconnect) {
    clearInterval(timer)
    process.exitCode = detail.code === 1000 ? 0 : 1
  }
})
client.addEventListener('reconnecting', ({ detail }) => {
  console.log(`reconnect attempt ${detail.attempt} in ${detail.delay} ms`)
})
client.addEventListener('error', ({ detail }) => {
  console.error(`error ${detail.code}: ${detail.message}`)
})

// payload is typed from the server's schema: { text: string }
client.on(channel, 'chat.message', (payload, { from }) => {
  console.log(`[${channel}] ${from ?? 'server'}: ${payload.text}`)
})

try {
  await client.join(channel) // queued until the server's welcome, resolves on `joined`
  console.log(`joined ${channel}`)
  timer = setInterval(() => {
    n++
    // While disconnected, calls wait in the client's queue and are sent once after the reconnect.
    client.publish(channel, 'chat.message', { text: `message ${n}` }).catch((err: unknown) => {
      console.error(`message ${n} not sent: ${err instanceof RealtimeError ? err.code : String(err)}`)
    })
  }, interval)
} catch (err) {
  console.error(`cannot join ${channel}: ${err instanceof RealtimeError ? err.code : String(err)}`)
  await client.close()
}

process.once('SIGINT', () => {
  clearInterval(timer)
  client.close().then(() => process.exit(0), () => process.exit(1)) // close code 1000
})
