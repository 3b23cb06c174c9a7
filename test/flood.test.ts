/**
 * Inbound flood: RATE_LIMITED, then 1008 past twice the limit; a well-behaved client on the same node keeps its
 * round trips short during and after the flood.
 */
import t from 'tap'
import { connect } from './helpers/client.js'
import { startServer } from './helpers/server.js'

t.test('20,000 frames as fast as possible: RATE_LIMITED then 1008; a bystander is unaffected', async (t) => {
  // A 60 s window makes the verdicts independent of how fast a loaded machine delivers the frames (with the default
  // 1 s window a slow run spreads 20,000 frames over several windows and never floods).
  const { app, url } = await startServer({ rateLimit: { max: 1000, timeWindow: 60_000 } })
  t.teardown(() => app.close())
  const flooder = await connect(`${url}?deviceId=flooder`)
  const bystander = await connect(`${url}?deviceId=calm`)
  await flooder.join('spam')
  await bystander.join('calm')
  const roundTrip = async (id: string): Promise<number> => {
    const started = Date.now()
    const reply = await bystander.request({ type: 'action', channel: 'calm', action: 'chat.message', payload: { text: id }, id })
    t.same(reply, { type: 'ack', id })
    return Date.now() - started
  }

  let limited = 0
  let firstLimitedId: unknown
  flooder.ws.on('message', (data) => {
    const frame = JSON.parse(data.toString())
    if (frame.code === 'RATE_LIMITED') {
      limited++
      firstLimitedId ??= frame.id
    }
  })
  for (let i = 0; i < 20_000; i++) {
    flooder.send({ type: 'action', channel: 'spam', action: 'chat.message', payload: { text: 'spam' }, id: i })
  }
  const during = await roundTrip('during')
  const { code, reason } = await flooder.closed
  const after = await roundTrip('after')

  t.equal(code, 1008, 'closed for policy violation')
  t.equal(reason, 'rate limit exceeded')
  t.ok(limited > 0, `frames over the limit were answered RATE_LIMITED (${limited})`)
  t.type(firstLimitedId, 'number', 'RATE_LIMITED carries the frame id')
  t.equal(firstLimitedId, 999, 'the window admits 1000 frames (the join used one of them)')
  t.ok(during < 2000, `bystander round trip during the flood: ${during} ms`)
  t.ok(after < 2000, `bystander round trip after the flood: ${after} ms`)
  const stats = app.realtime.stats()
  t.ok(stats.framesRateLimited >= limited && stats.floodsClosed === 1, 'counted in stats()')
  await bystander.close()
})

t.test('rateLimit: a lower app limit, and false disables it', async (t) => {
  const limitedServer = await startServer({ rateLimit: { max: 5, timeWindow: 60_000 } })
  const unlimited = await startServer({ rateLimit: false })
  t.teardown(() => Promise.all([limitedServer.app.close(), unlimited.app.close()]))
  const c = await connect(limitedServer.url)
  const replies = []
  for (let i = 0; i < 8; i++) replies.push(c.request({ type: 'leave', channel: 'x', id: i }))
  const codes = (await Promise.all(replies)).map((f) => f.type === 'error' ? f.code : f.type)
  t.same(codes, ['left', 'left', 'left', 'left', 'left', 'RATE_LIMITED', 'RATE_LIMITED', 'RATE_LIMITED'])
  const u = await connect(unlimited.url)
  const many = []
  for (let i = 0; i < 200; i++) many.push(u.request({ type: 'leave', channel: 'x', id: i }))
  t.ok((await Promise.all(many)).every((f) => f.type === 'left'))
  await Promise.all([c.close(), u.close()])
})

t.test('rateLimit.perDevice: one budget per deviceId, shared across nodes through Redis', async (t) => {
  const { Redis } = await import('ioredis')
  const { startRedis } = await import('./helpers/redis.js')
  const { redisAdapter } = await import('../lib/index.js')
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const store = new Redis({ port: redis.port, host: '127.0.0.1' })
  t.teardown(() => store.quit())
  const options = () => ({ adapter: redisAdapter({ url: redis.url }), rateLimit: { max: 6, timeWindow: 60_000, perDevice: { redis: store } } })
  const a = await startServer(options())
  const b = await startServer(options())
  t.teardown(() => Promise.all([a.app.close(), b.app.close()]))
  const onA = await connect(`${a.url}?deviceId=shared`)
  const onB = await connect(`${b.url}?deviceId=shared`)
  const other = await connect(`${b.url}?deviceId=other`)
  const leave = async (c: typeof onA, id: number) => {
    const reply = await c.request({ type: 'leave', channel: 'x', id })
    return reply.type === 'error' ? reply.code : reply.type
  }
  const replies = []
  for (let i = 0; i < 4; i++) replies.push(await leave(onA, i))
  for (let i = 4; i < 8; i++) replies.push(await leave(onB, i))
  t.same(replies, ['left', 'left', 'left', 'left', 'left', 'left', 'RATE_LIMITED', 'RATE_LIMITED'], 'six frames in all, whichever node')
  t.equal(await leave(other, 100), 'left', 'another deviceId has its own budget')
  await Promise.all([onA.close(), onB.close(), other.close()])
})
