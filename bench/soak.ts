/**
 * Soak: N connect / join / publish / close cycles against one node with the Redis adapter (a redis-server of its
 * own, from PATH, on a free loopback port). Prints heap, RSS and registry size before and after, and the Redis
 * subscriptions left. `npm run soak -- --cycles 20000 --concurrency 50`
 */
import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import Fastify from 'fastify'
import Type from 'typebox'
import { Redis } from 'ioredis'
import WebSocket from 'ws'
import realtimePlugin, { redisAdapter } from '../lib/index.js'
import { startRedis } from '../test/helpers/redis.js'
import { serverSocketsClosed } from '../test/helpers/wait.js'

export interface SoakResult {
  cycles: number
  seconds: number
  before: { heapMiB: number, rssMiB: number, connections: number, topics: number }
  after: { heapMiB: number, rssMiB: number, connections: number, topics: number }
  redisChannelsLeft: number
}

const MiB = 2 ** 20

/** One cycle: connect, await welcome, join, publish with an id, await the ack, close, await the close. */
async function cycle (url: string, i: number): Promise<void> {
  const ws = new WebSocket(`${url}?deviceId=soak-${i % 500}`)
  const channel = `soak:${i % 100}`
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject)
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString())
      if (frame.type === 'welcome') ws.send(JSON.stringify({ type: 'join', channel, id: 'j' }))
      else if (frame.type === 'joined') ws.send(JSON.stringify({ type: 'action', channel, action: 'soak.ping', payload: { i }, id: 'a' }))
      else if (frame.type === 'ack') ws.close(1000)
      else if (frame.type === 'error') reject(new Error(`cycle ${i}: ${frame.code} ${frame.message}`))
    })
    ws.on('close', () => resolve())
  })
}

function snapshot (app: Awaited<ReturnType<typeof Fastify>>): SoakResult['before'] {
  const mem = process.memoryUsage()
  const { connections, topics } = app.realtime.stats()
  return { heapMiB: +(mem.heapUsed / MiB).toFixed(1), rssMiB: +(mem.rss / MiB).toFixed(1), connections, topics }
}

/** Runs the soak and returns its figures; every resource it started is stopped before it returns. */
export async function runSoak ({ cycles = 20_000, concurrency = 50 } = {}): Promise<SoakResult> {
  const redis = await startRedis()
  const app = Fastify()
  const admin = new Redis({ port: redis.port, host: '127.0.0.1' })
  try {
    await app.register(realtimePlugin, {
      actions: { 'soak.ping': Type.Object({ i: Type.Integer() }) },
      adapter: redisAdapter({ url: redis.url }),
      rateLimit: false
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`
    global.gc?.()
    const before = snapshot(app)
    const started = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < cycles) await cycle(url, next++)
    }))
    const seconds = (performance.now() - started) / 1000
    // Server-side close handlers run when each TCP socket closes; wait for the last ones.
    await serverSocketsClosed(app)
    await app.realtime.adapter.subscribe('soak-sync', () => {}) // a round trip orders the last UNSUBSCRIBEs
    await app.realtime.adapter.unsubscribe('soak-sync', () => {})
    global.gc?.()
    const after = snapshot(app)
    const left = (await admin.pubsub('CHANNELS', 'realtime:*')) as string[]
    return { cycles, seconds: +seconds.toFixed(2), before, after, redisChannelsLeft: left.filter((c) => c !== 'realtime:{soak-sync}').length }
  } finally {
    await admin.quit()
    await app.close()
    await redis.stop()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const { values } = parseArgs({ options: { cycles: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '50' } } })
  const result = await runSoak({ cycles: Number(values.cycles), concurrency: Number(values.concurrency) })
  console.log(JSON.stringify(result, null, 2))
  console.log(`${result.cycles} cycles in ${result.seconds} s (${Math.round(result.cycles / result.seconds)}/s); ` +
    `heap ${result.before.heapMiB} -> ${result.after.heapMiB} MiB, RSS ${result.before.rssMiB} -> ${result.after.rssMiB} MiB, ` +
    `registry ${result.before.topics} -> ${result.after.topics} topics, Redis channels left: ${result.redisChannelsLeft}`)
}
