/**
 * The node-level continuity of a history channel: live messages as pub/sub hands them over (lost, repeated, from
 * another epoch) against a real stream (the memory adapter's history).
 */
import t from 'tap'
import Fastify from 'fastify'
import { memoryAdapter } from '../lib/index.js'
import { StreamFollower } from '../lib/stream-follower.js'
import type { HistoryCapability, StreamPosition } from '../lib/adapters/history.js'

const log = Fastify().log

type Event = ['emit', string, number] | ['reset', string, number]

function follower (history: HistoryCapability, topic: string, failReads = false): { f: StreamFollower, events: Event[], until: (n: number) => Promise<void> } {
  const events: Event[] = []
  let waiter: { n: number, resolve: () => void } | undefined
  const push = (e: Event): void => {
    events.push(e)
    if (waiter !== undefined && events.length >= waiter.n) waiter.resolve()
  }
  const f = new StreamFollower(topic, {
    read: (since, limit) => failReads ? Promise.reject(new Error('unreachable')) : history.read(topic, { since, limit }),
    emit: (message, offset) => push(['emit', message, offset]),
    reset: (epoch, offset) => push(['reset', epoch, offset])
  }, log)
  const until = (n: number): Promise<void> => events.length >= n ? Promise.resolve() : new Promise((resolve) => { waiter = { n, resolve } })
  return { f, events, until }
}

/** Resolves once the follower is done reading the stream (it has no event for that: checked every tick). */
async function settled (f: StreamFollower): Promise<void> {
  const deadline = Date.now() + 5000
  while (f.syncing) {
    if (Date.now() > deadline) throw new Error('the follower is still reading after 5 s')
    await new Promise((resolve) => setImmediate(resolve))
  }
}

async function stream (history: HistoryCapability, topic: string, count: number, size = 100): Promise<StreamPosition[]> {
  const positions: StreamPosition[] = []
  for (let i = 1; i <= count; i++) positions.push(await history.publish(topic, `m${i}`, { size, ttl: 60_000 }))
  return positions
}

t.test('in order: passed on at once; a repeated offset is dropped', async (t) => {
  const adapter = memoryAdapter()
  t.teardown(() => adapter.close())
  const p = await stream(adapter.history!, 'a', 3)
  const { f, events } = follower(adapter.history!, 'a')
  f.accept('m1', p[0]!)
  f.accept('m2', p[1]!)
  f.accept('m1', p[0]!)
  f.accept('m3', p[2]!)
  t.same(events, [['emit', 'm1', 1], ['emit', 'm2', 2], ['emit', 'm3', 3]])
  t.same(f.position, p[2])
})

t.test('a gap is filled from the stream; live messages arriving meanwhile follow in order', async (t) => {
  const adapter = memoryAdapter()
  t.teardown(() => adapter.close())
  const p = await stream(adapter.history!, 'b', 6)
  const { f, events } = follower(adapter.history!, 'b')
  f.accept('m1', p[0]!)
  f.accept('m4', p[3]!) // 2 and 3 lost
  t.ok(f.syncing)
  f.accept('m5', p[4]!) // held while the stream is read
  f.accept('m3', p[2]!) // a late copy of a filled one
  await settled(f)
  f.accept('m6', p[5]!) // already filled: the stream's top was 6
  t.same(events.map((e) => e[2]), [1, 2, 3, 4, 5, 6])
  t.same(events.map((e) => e[0]), ['emit', 'emit', 'emit', 'emit', 'emit', 'emit'])
  t.notOk(f.syncing)
})

t.test('a gap the stream no longer holds: a reset to the top, then what follows', async (t) => {
  const adapter = memoryAdapter()
  t.teardown(() => adapter.close())
  const p = await stream(adapter.history!, 'c', 6, 2) // only 5 and 6 kept
  const { f, events } = follower(adapter.history!, 'c')
  f.accept('m1', p[0]!)
  f.accept('m5', p[4]!)
  await settled(f)
  const [seven] = await stream(adapter.history!, 'c', 1, 2)
  t.equal(seven!.offset, 7)
  f.accept('m1', seven!) // the helper names every message m1.. from its own count
  t.same(events, [['emit', 'm1', 1], ['reset', p[0]!.epoch, 6], ['emit', 'm1', 7]], 'm5 was covered by the reset')
})

t.test('another epoch: a reset to the stream\'s; stale messages of the old epoch are dropped', async (t) => {
  const adapter = memoryAdapter()
  t.teardown(() => adapter.close())
  const p = await stream(adapter.history!, 'd', 2)
  const { f, events } = follower(adapter.history!, 'd')
  f.accept('m1', { offset: 1, epoch: 'gone' })
  f.accept('m2', { offset: 2, epoch: 'gone' })
  f.accept('m1', p[0]!) // the stream's epoch differs from the one followed
  f.accept('old3', { offset: 3, epoch: 'gone' }) // held, then found stale
  await settled(f)
  t.same(events, [['emit', 'm1', 1], ['emit', 'm2', 2], ['reset', p[0]!.epoch, 2]])
  t.same(f.position, p[1])
  t.notOk(f.syncing)
})

t.test('catchUp reads what the node missed up to the top', async (t) => {
  const adapter = memoryAdapter()
  t.teardown(() => adapter.close())
  const p = await stream(adapter.history!, 'e', 3)
  const { f, events, until } = follower(adapter.history!, 'e')
  f.accept('m1', p[0]!)
  f.catchUp()
  await until(3)
  t.same(events.map((e) => e[2]), [1, 2, 3])
  await settled(f)
  f.catchUp()
  t.ok(f.syncing)
  await settled(f)
  t.equal(events.length, 3, 'at the top: nothing more')
})

t.test('a stream that cannot be read: a reset just before the held message, which follows', async (t) => {
  const adapter = memoryAdapter()
  t.teardown(() => adapter.close())
  const p = await stream(adapter.history!, 'f', 4)
  const { f, events, until } = follower(adapter.history!, 'f', true)
  f.accept('m1', p[0]!)
  f.accept('m3', p[2]!)
  f.accept('m4', p[3]!)
  await until(4)
  t.same(events, [['emit', 'm1', 1], ['reset', p[0]!.epoch, 2], ['emit', 'm3', 3], ['emit', 'm4', 4]])
})

t.test('seed: the position read at the first join is the start', async (t) => {
  const adapter = memoryAdapter()
  t.teardown(() => adapter.close())
  const p = await stream(adapter.history!, 'g', 3)
  const { f, events, until } = follower(adapter.history!, 'g')
  f.seed(p[0]!)
  f.seed(p[2]!) // only the first seed counts
  f.accept('m3', p[2]!) // 2 was missed between the read and the subscription's first message
  await until(2)
  t.same(events, [['emit', 'm2', 2], ['emit', 'm3', 3]])
})

t.test('a live offset beyond what the stream holds: bounded reads, then a reset before it and the message, no loop', async (t) => {
  const adapter = memoryAdapter()
  t.teardown(() => adapter.close())
  const p = await stream(adapter.history!, 'h', 2)
  let reads = 0
  const events: Event[] = []
  const f = new StreamFollower('h', {
    read: (since, limit) => { reads++; return adapter.history!.read('h', { since, limit }) },
    emit: (message, offset) => { events.push(['emit', message, offset]) },
    reset: (epoch, offset) => { events.push(['reset', epoch, offset]) }
  }, log)
  f.accept('m1', p[0]!)
  f.accept('far', { offset: 9, epoch: p[0]!.epoch }) // e.g. a stream restored from an old snapshot under the same epoch
  await settled(f)
  t.same(events, [['emit', 'm1', 1], ['emit', 'm2', 2], ['reset', p[0]!.epoch, 8], ['emit', 'far', 9]])
  t.equal(reads, 2, 'the read that filled 2, one that found nothing more: then the reset')
})
