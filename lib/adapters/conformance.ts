/**
 * The adapter conformance suite, exported as `fastify-realtime/adapter-tests`. Every adapter of this package
 * passes it, and a third-party adapter proves it honours the `RealtimeAdapter` contract by running it:
 *
 * ```ts
 * import t from 'tap'                       // or: import { test } from 'node:test'
 * import { adapterConformance } from 'fastify-realtime/adapter-tests'
 * adapterConformance((name, fn) => t.test(name, fn), {
 *   create: async () => natsAdapter({ servers: '127.0.0.1:4222' }),
 *   createPeer: async () => natsAdapter({ servers: '127.0.0.1:4222' }),  // optional: a second node
 *   history: {},                                                         // optional: it claims adapter.history
 *   presence: { timeout: 3000 }                                          // optional: it claims adapter.presence
 * })
 * ```
 * Assertions use `node:assert/strict`, so any test runner whose test function fails on a thrown error works.
 */
import assert from 'node:assert/strict'
import type { RealtimeAdapter } from './adapter.js'
import { inbox as newInbox, uniqueTopic, type Inbox } from './conformance-inbox.js'
import { historyConformance, type HistoryConformance } from './conformance-history.js'
import { presenceConformance, type PresenceConformance } from './conformance-presence.js'

export type { HistoryConformance, PresenceConformance }

/** Registers one named async test with the runner (tap's `t.test`, node:test's `test`, ...). */
export type TestFunction = (name: string, fn: () => Promise<void>) => unknown

/** How the suite gets adapters. */
export interface ConformanceOptions {
  /** Returns a new, ready adapter (already `init`ed if it needs it). The suite closes it. */
  create: () => RealtimeAdapter | Promise<RealtimeAdapter>
  /**
   * Optional: returns an adapter of another node sharing the same backend as those of `create`. When given, the
   * suite also checks delivery across nodes.
   */
  createPeer?: () => RealtimeAdapter | Promise<RealtimeAdapter>
  /** Longest wait for an expected message, in ms. Default 5000. */
  timeout?: number
  /** Runs the history section: the adapter claims `adapter.history` (see `HistoryConformance`). */
  history?: HistoryConformance
  /** Runs the presence section: the adapter claims `adapter.presence` (see `PresenceConformance`). */
  presence?: PresenceConformance
}

/**
 * Registers the conformance tests: delivery, several handlers per topic, topic isolation, publish order,
 * no delivery after unsubscribe, close() semantics, and (with `createPeer`) delivery across nodes. Then one
 * section per capability claimed in the options: `history` (conformance-history.ts) and `presence`
 * (conformance-presence.ts); each of its tests fails when the adapter lacks the capability it claims.
 */
export function adapterConformance (test: TestFunction, options: ConformanceOptions): void {
  const timeout = options.timeout ?? 5000
  const topic = uniqueTopic
  const inbox = (): Inbox => newInbox(timeout)

  async function withAdapter (fn: (adapter: RealtimeAdapter) => Promise<void>): Promise<void> {
    const adapter = await options.create()
    try {
      await fn(adapter)
    } finally {
      await adapter.close()
    }
  }

  /**
   * Proves that nothing else is in flight for this adapter: publishes to a sentinel topic and waits for it. Since
   * one adapter delivers its publishes in order across topics, anything published before has arrived by then.
   */
  async function flush (adapter: RealtimeAdapter): Promise<void> {
    const sentinel = inbox()
    const name = topic('sentinel')
    await adapter.subscribe(name, sentinel.handler)
    await adapter.publish(name, 'flush')
    await sentinel.until(1)
    await adapter.unsubscribe(name, sentinel.handler)
  }

  test('delivers a published message, byte for byte, to a subscriber', () => withAdapter(async (adapter) => {
    const t = topic('deliver')
    const box = inbox()
    await adapter.subscribe(t, box.handler)
    const message = JSON.stringify({ type: 'message', text: 'héllo ✓ \u{1F600}', n: 1 })
    await adapter.publish(t, message)
    assert.deepEqual(await box.until(1), [message])
  }))

  test('several handlers of one topic each receive every message once', () => withAdapter(async (adapter) => {
    const t = topic('handlers')
    const a = inbox()
    const b = inbox()
    await adapter.subscribe(t, a.handler)
    await adapter.subscribe(t, b.handler)
    await adapter.subscribe(t, a.handler) // same handler twice: still one delivery
    await adapter.publish(t, 'm1')
    await adapter.publish(t, 'm2')
    assert.deepEqual(await a.until(2), ['m1', 'm2'])
    assert.deepEqual(await b.until(2), ['m1', 'm2'])
    await flush(adapter)
    assert.equal(a.messages.length, 2)
  }))

  test('messages from one publisher arrive in publish order', () => withAdapter(async (adapter) => {
    const t = topic('order')
    const box = inbox()
    await adapter.subscribe(t, box.handler)
    const sent = Array.from({ length: 500 }, (_, i) => `m${i}`)
    await Promise.all(sent.map((m) => adapter.publish(t, m)))
    assert.deepEqual(await box.until(sent.length), sent)
  }))

  test('topics are isolated', () => withAdapter(async (adapter) => {
    const a = inbox()
    const b = inbox()
    const ta = topic('iso-a')
    const tb = topic('iso-b')
    await adapter.subscribe(ta, a.handler)
    await adapter.subscribe(tb, b.handler)
    await adapter.publish(ta, 'for-a')
    await flush(adapter)
    assert.deepEqual(a.messages, ['for-a'])
    assert.deepEqual(b.messages, [])
  }))

  test('no delivery after unsubscribe; the other handlers of the topic keep theirs', () => withAdapter(async (adapter) => {
    const t = topic('unsub')
    const gone = inbox()
    const stays = inbox()
    await adapter.subscribe(t, gone.handler)
    await adapter.subscribe(t, stays.handler)
    await adapter.publish(t, 'before')
    await gone.until(1)
    await adapter.unsubscribe(t, gone.handler)
    await adapter.publish(t, 'after')
    await stays.until(2)
    await adapter.unsubscribe(t, stays.handler)
    await adapter.publish(t, 'nobody')
    await adapter.unsubscribe(t, stays.handler) // unknown pair: no-op
    await adapter.unsubscribe(topic('never'), stays.handler)
    await flush(adapter)
    assert.deepEqual(gone.messages, ['before'])
    assert.deepEqual(stays.messages, ['before', 'after'])
  }))

  test('a topic can be subscribed again after its last handler left', () => withAdapter(async (adapter) => {
    const t = topic('resub')
    const box = inbox()
    await adapter.subscribe(t, box.handler)
    await adapter.unsubscribe(t, box.handler)
    await adapter.subscribe(t, box.handler)
    await adapter.publish(t, 'again')
    assert.deepEqual(await box.until(1), ['again'])
  }))

  test('close() is idempotent; afterwards subscribe and publish reject with FST_REALTIME_ADAPTER_CLOSED', async () => {
    const adapter = await options.create()
    const box = inbox()
    const t = topic('close')
    await adapter.subscribe(t, box.handler)
    await adapter.close()
    await adapter.close()
    await assert.rejects(adapter.publish(t, 'late'), { code: 'FST_REALTIME_ADAPTER_CLOSED' })
    await assert.rejects(adapter.subscribe(t, box.handler), { code: 'FST_REALTIME_ADAPTER_CLOSED' })
    await adapter.unsubscribe(t, box.handler)
    assert.deepEqual(box.messages, [])
  })

  const createPeer = options.createPeer
  if (options.history !== undefined) historyConformance(test, options, options.history)
  if (options.presence !== undefined) presenceConformance(test, options, options.presence)
  if (createPeer === undefined) return

  test('a message published on one node reaches subscribers on another, in order', () => withAdapter(async (adapter) => {
    const peer = await createPeer()
    try {
      const t = topic('cross')
      const here = inbox()
      const there = inbox()
      await adapter.subscribe(t, here.handler)
      await peer.subscribe(t, there.handler)
      const sent = Array.from({ length: 100 }, (_, i) => `x${i}`)
      await Promise.all(sent.map((m) => adapter.publish(t, m)))
      assert.deepEqual(await there.until(sent.length), sent)
      assert.deepEqual(await here.until(sent.length), sent)
    } finally {
      await peer.close()
    }
  }))

  test('a closed node receives nothing more from its peers', () => withAdapter(async (adapter) => {
    const peer = await createPeer()
    const t = topic('closed-peer')
    const closedBox = inbox()
    await peer.subscribe(t, closedBox.handler)
    await peer.close()
    const box = inbox()
    await adapter.subscribe(t, box.handler)
    await adapter.publish(t, 'after-close')
    await box.until(1)
    await flush(adapter)
    assert.deepEqual(closedBox.messages, [])
  }))
}
