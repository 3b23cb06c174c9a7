/**
 * The history section of the adapter conformance suite (`HistoryCapability`): offsets +1 from 1 under one epoch,
 * positions delivered in offset order (across two instances with a peer), exclusive `since`, trimming by size and
 * by ttl, and a new epoch after the stored streams are lost.
 */
import assert from 'node:assert/strict'
import type { RealtimeAdapter } from './adapter.js'
import { inbox, pollUntil, uniqueTopic as topic } from './conformance-inbox.js'
import type { ConformanceOptions, TestFunction } from './conformance.js'
import type { HistoryCapability, HistoryOptions, StreamPosition } from './history.js'

/** What the history section needs besides `ConformanceOptions`. */
export interface HistoryConformance {
  /**
   * Makes the backend lose every stored stream, as a restart without persistence does (Redis: restart the
   * server; memory: close the adapter and create another), and returns the adapter to use afterwards: the same
   * one once it is ready again, or a new one (the suite closes both). Without it the new-epoch test is not run.
   */
  loseStorage?: (adapter: RealtimeAdapter) => Promise<RealtimeAdapter>
  /** Time to wait for a stream to expire in the ttl test, in ms (the ttl given is a fifth of it). Default 5000. */
  ttlWait?: number
}

const KEEP: HistoryOptions = { size: 1000, ttl: 60_000 }

function historyOf (adapter: RealtimeAdapter): HistoryCapability {
  assert.ok(adapter.history !== undefined, 'the adapter claims history but has no adapter.history')
  return adapter.history
}

/** Registers the history tests. */
export function historyConformance (test: TestFunction, options: ConformanceOptions, section: HistoryConformance): void {
  const timeout = options.timeout ?? 5000
  const ttlWait = section.ttlWait ?? 5000

  async function withAdapter (fn: (adapter: RealtimeAdapter, history: HistoryCapability) => Promise<void>): Promise<void> {
    const adapter = await options.create()
    try {
      const history = historyOf(adapter)
      await history.start?.()
      await fn(adapter, history)
    } finally {
      await adapter.close()
    }
  }

  test('history: offsets +1 from 1 under the epoch read before the first publish; handlers get each position in order', () => withAdapter(async (adapter, history) => {
    const t = topic('h-offsets')
    const box = inbox(timeout)
    await adapter.subscribe(t, box.handler)
    const empty = await history.read(t, { limit: 10 })
    assert.equal(empty.offset, 0, 'an empty stream is at offset 0')
    assert.equal(typeof empty.epoch, 'string')
    assert.ok(empty.epoch.length > 0 && !empty.epoch.includes(' '), 'an epoch is a non-empty string without spaces')
    assert.deepEqual(empty.messages, [])
    const sent = Array.from({ length: 20 }, (_, i) => JSON.stringify({ n: i, text: 'héllo ✓' }))
    const positions = await Promise.all(sent.map((m) => history.publish(t, m, KEEP)))
    const expected = sent.map((_, i): StreamPosition => ({ offset: i + 1, epoch: empty.epoch }))
    assert.deepEqual(positions, expected, 'publish resolves with each message\'s position')
    assert.deepEqual(await box.until(sent.length), sent)
    assert.deepEqual(box.positions, expected, 'the handler gets the same positions, in offset order')
  }))

  test('history: read returns the stored messages after since (exclusive), ascending, at most limit', () => withAdapter(async (_adapter, history) => {
    const t = topic('h-read')
    for (let i = 1; i <= 10; i++) await history.publish(t, `m${i}`, KEEP)
    const all = await history.read(t, { limit: 100 })
    assert.equal(all.offset, 10)
    assert.deepEqual(all.messages, Array.from({ length: 10 }, (_, i) => ({ offset: i + 1, message: `m${i + 1}` })))
    const page = await history.read(t, { since: 4, limit: 3 })
    assert.deepEqual(page, { epoch: all.epoch, offset: 10, messages: [{ offset: 5, message: 'm5' }, { offset: 6, message: 'm6' }, { offset: 7, message: 'm7' }] })
    assert.deepEqual((await history.read(t, { since: 10, limit: 100 })).messages, [], 'nothing after the top')
    assert.deepEqual(await history.read(t, { since: 3, limit: 0 }), { epoch: all.epoch, offset: 10, messages: [] }, 'limit 0: the position only')
  }))

  test('history: trimmed to size on publish; the position outlives the trimmed messages', () => withAdapter(async (_adapter, history) => {
    const t = topic('h-size')
    for (let i = 1; i <= 7; i++) await history.publish(t, `m${i}`, { size: 3, ttl: 60_000 })
    const page = await history.read(t, { limit: 100 })
    assert.equal(page.offset, 7)
    assert.deepEqual(page.messages, [{ offset: 5, message: 'm5' }, { offset: 6, message: 'm6' }, { offset: 7, message: 'm7' }])
    assert.deepEqual((await history.read(t, { since: 1, limit: 100 })).messages.map((m) => m.offset), [5, 6, 7],
      'a since older than the oldest stored gives what is stored: the caller sees the hole from the first offset')
  }))

  test('history: messages expire ttl ms after the last publish; the epoch and offset stay and continue', () => withAdapter(async (_adapter, history) => {
    const t = topic('h-ttl')
    const ttl = Math.max(1, Math.round(ttlWait / 5))
    const first = await history.publish(t, 'a', { size: 10, ttl })
    await history.publish(t, 'b', { size: 10, ttl })
    const expired = await pollUntil(() => history.read(t, { limit: 10 }), (page) => page.messages.length === 0, ttlWait, 'the stream to expire')
    assert.deepEqual(expired, { epoch: first.epoch, offset: 2, messages: [] }, 'the position outlives the messages')
    assert.deepEqual(await history.publish(t, 'c', { size: 10, ttl: 60_000 }), { offset: 3, epoch: first.epoch })
    assert.deepEqual((await history.read(t, { limit: 10 })).messages, [{ offset: 3, message: 'c' }])
  }))

  test('history: plain publish on a history topic comes without a position; topics keep separate offsets', () => withAdapter(async (adapter, history) => {
    const t1 = topic('h-mixed-1')
    const t2 = topic('h-mixed-2')
    const box = inbox(timeout)
    await adapter.subscribe(t1, box.handler)
    const odd = '\u0001 looks like an envelope 7 x'
    assert.equal((await history.publish(t1, 'h1', KEEP)).offset, 1)
    await adapter.publish(t1, 'plain')
    await adapter.publish(t1, odd)
    assert.equal((await history.publish(t2, 'other', KEEP)).offset, 1, 'another topic has its own stream')
    assert.equal((await history.publish(t1, 'h2', KEEP)).offset, 2, 'plain publishes take no offset')
    assert.deepEqual(await box.until(4), ['h1', 'plain', odd, 'h2'], 'every message byte for byte, in order')
    assert.deepEqual(box.positions.map((p) => p?.offset), [1, undefined, undefined, 2])
    assert.deepEqual((await history.read(t1, { limit: 10 })).messages.map((m) => m.message), ['h1', 'h2'], 'plain messages are not stored')
  }))

  const createPeer = options.createPeer
  if (createPeer !== undefined) {
    test('history: concurrent publishers on two nodes get gap-free offsets, delivered in offset order on both', () => withAdapter(async (adapter, history) => {
      const peer = await createPeer()
      try {
        const peerHistory = historyOf(peer)
        const t = topic('h-two-nodes')
        const here = inbox(timeout)
        const there = inbox(timeout)
        await adapter.subscribe(t, here.handler)
        await peer.subscribe(t, there.handler)
        const count = 200
        const sends = Array.from({ length: count }, (_, i) => (i % 2 === 0 ? history : peerHistory).publish(t, `p${i}`, KEEP))
        const positions = await Promise.all(sends)
        const byOffset = new Map(positions.map((p, i) => [p.offset, `p${i}`]))
        assert.deepEqual([...byOffset.keys()].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i + 1), 'offsets 1..n, no gap, no repeat')
        assert.equal(new Set(positions.map((p) => p.epoch)).size, 1, 'one epoch on both nodes')
        const inOrder = Array.from({ length: count }, (_, i) => byOffset.get(i + 1)!)
        for (const box of [here, there]) {
          assert.deepEqual(await box.until(count), inOrder, 'each node receives the messages in offset order')
          assert.deepEqual(box.positions.map((p) => p!.offset), inOrder.map((_, i) => i + 1))
        }
        const stored = await peerHistory.read(t, { limit: count })
        assert.deepEqual(stored.messages.map((m) => m.message), inOrder, 'the stream holds the same order')
      } finally {
        await peer.close()
      }
    }))
  }

  const loseStorage = section.loseStorage
  if (loseStorage !== undefined) {
    test('history: after the stored streams are lost, a new epoch starts from offset 1', async () => {
      const adapter = await options.create()
      let after: RealtimeAdapter | undefined
      try {
        const t = topic('h-lost')
        for (let i = 1; i <= 3; i++) await historyOf(adapter).publish(t, `old${i}`, KEEP)
        const before = await historyOf(adapter).read(t, { limit: 10 })
        assert.equal(before.offset, 3)
        after = await loseStorage(adapter)
        const history = historyOf(after)
        const reborn = await history.read(t, { limit: 10 })
        assert.notEqual(reborn.epoch, before.epoch, 'a new epoch')
        assert.deepEqual({ offset: reborn.offset, messages: reborn.messages }, { offset: 0, messages: [] })
        assert.deepEqual(await history.publish(t, 'new1', KEEP), { offset: 1, epoch: reborn.epoch })
        assert.deepEqual((await history.read(t, { limit: 10 })).messages, [{ offset: 1, message: 'new1' }])
      } finally {
        await adapter.close()
        if (after !== undefined && after !== adapter) await after.close()
      }
    })
  }
}
