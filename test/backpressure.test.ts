/**
 * Slow consumers: a member that stops reading its TCP socket is cut off at maxBufferedBytes, while every other
 * member receives every message in order and the process memory stays bounded.
 */
import t from 'tap'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import WebSocket from 'ws'
import { startServer } from './helpers/server.js'
import { startServerProcess } from './helpers/server-process.js'

const MEMBERS = 100
const MESSAGES = 8000 // 8000 x ~1 KB = ~8 MB per member: more than the kernel's socket buffers plus 1 MiB
const BATCH = 100
const text = 'x'.repeat(1000)

/** A member reading as fast as it can; checks order and counts. */
class FastMember {
  readonly ws: WebSocket
  received = 0
  inOrder = true
  #target = 0
  #reached: (() => void) | undefined

  constructor (url: string) {
    this.ws = new WebSocket(url)
    this.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString())
      if (frame.type !== 'message') return
      if (frame.payload.x !== this.received) this.inOrder = false
      this.received++
      if (this.received >= this.#target) this.#reached?.()
    })
  }

  reach (n: number): Promise<void> {
    if (this.received >= n) return Promise.resolve()
    this.#target = n
    return new Promise((resolve) => { this.#reached = resolve })
  }
}

/** Joins once open; a persistent listener, since several frames may arrive in one TCP chunk (one tick). */
async function joined (ws: WebSocket, channel: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const onMessage = (data: WebSocket.RawData): void => {
      if (JSON.parse(data.toString()).type !== 'joined') return
      ws.off('message', onMessage)
      resolve()
    }
    ws.on('message', onMessage)
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'join', channel, id: 1 }))
    else ws.once('open', () => ws.send(JSON.stringify({ type: 'join', channel, id: 1 })))
  })
}

for (const policy of ['close', 'drop'] as const) {
  t.test(`slow consumer, policy '${policy}': cut off, others get everything in order, server memory bounded`, async (t) => {
    // The server runs in its own process so its memory is measured apart from the 100 clients of this one.
    const server = await startServerProcess({ slowConsumer: policy })
    t.teardown(() => server.stop())
    const url = server.url

    const fast = Array.from({ length: MEMBERS - 1 }, () => new FastMember(url))
    await Promise.all(fast.map((m) => joined(m.ws, 'firehose')))
    const slow = new WebSocket(`${url}?deviceId=slow`)
    await joined(slow, 'firehose')
    const slowSocket = (slow as unknown as { _socket: Socket })._socket
    slowSocket.pause() // stops reading: the kernel buffers fill, then the server's

    const before = server.memory()
    for (let sent = 0; sent < MESSAGES; sent += BATCH) {
      const payloads = Array.from({ length: BATCH }, (_, i) => ({ x: sent + i, text }))
      await server.request({ type: 'publish', channel: 'firehose', action: 'bench.msg', payloads }, 'published')
      // Flow control on the fast members only: the publisher never waits for the slow one.
      await Promise.all(fast.map((m) => m.reach(sent + BATCH)))
    }

    t.ok(fast.every((m) => m.received === MESSAGES), 'every fast member received every message')
    t.ok(fast.every((m) => m.inOrder), 'in publish order')
    const { stats } = await server.request({ type: 'stats' }, 'stats')
    if (policy === 'close') {
      t.equal(stats.slowConsumersClosed, 1, 'exactly the slow member was cut off')
      await server.request({ type: 'closed', deviceId: 'slow' }, 'closed')
      slowSocket.resume()
      const [code] = await once(slow, 'close')
      t.equal(code, 1006, 'a peer that never read again sees 1006 (its close frame was never flushed)')
    } else {
      t.ok(stats.deliveriesDropped > 0, `deliveries to the slow member were dropped and counted (${stats.deliveriesDropped})`)
      t.equal(stats.slowConsumersClosed, 0)
      slow.terminate()
    }
    const growth = (server.memory().peak - before.rss) / 2 ** 20
    t.ok(growth < 64, `server peak RSS grew by ${growth.toFixed(1)} MiB (< 64 MiB)`)
    for (const m of fast) m.ws.close()
  })
}

t.test('a slow consumer that still reads gets 1013', async (t) => {
  const { app, url } = await startServer({ maxBufferedBytes: 64 * 1024 })
  t.teardown(() => app.close())
  const slow = new WebSocket(url)
  await joined(slow, 'burst')
  const slowSocket = (slow as unknown as { _socket: Socket })._socket
  slowSocket.pause()
  const big = 'y'.repeat(4000)
  // Enough to fill the kernel buffers and pass 64 KiB of server-side backlog.
  for (let i = 0; i < 3000 && app.realtime.stats().slowConsumersClosed === 0; i++) {
    await app.realtime.publish('burst', 'chat.message', { text: big })
  }
  t.equal(app.realtime.stats().slowConsumersClosed, 1)
  slowSocket.resume() // reads again: drains the backlog, then the close frame
  const [code] = await once(slow, 'close')
  t.equal(code, 1013)
})
