/**
 * The presence section of the adapter conformance suite (`PresenceCapability`): one member per device, joins and
 * leaves reported once, members visible across instances (with a peer), `close()` removing its own members
 * first, and a crashed instance's members removed within the bound with leaves on a surviving instance.
 */
import assert from 'node:assert/strict'
import type { RealtimeAdapter } from './adapter.js'
import { pollUntil, uniqueTopic as topic } from './conformance-inbox.js'
import type { ConformanceOptions, TestFunction } from './conformance.js'
import type { PresenceCapability, PresenceChange, PresenceMember } from './presence.js'

/** What the presence section needs besides `ConformanceOptions`. */
export interface PresenceConformance {
  /**
   * Stops `adapter` the way a crash would (no cleanup, no more heartbeats: e.g. cut its backend connection); the
   * suite calls its `close()` afterwards only to release resources. With `createPeer`, enables the dead-node test.
   */
  crash?: (adapter: RealtimeAdapter) => Promise<void>
  /** The bound, in ms, within which the adapters remove a crashed node's members. Default 15000. */
  timeout?: number
}

function presenceOf (adapter: RealtimeAdapter): PresenceCapability {
  assert.ok(adapter.presence !== undefined, 'the adapter claims presence but has no adapter.presence')
  return adapter.presence
}

const NONE: PresenceChange = { joins: [], leaves: [] }

function byDevice (members: PresenceMember[]): PresenceMember[] {
  return [...members].sort((a, b) => a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0)
}

/** Collects what a presence listener reports, per topic. */
function recorder (): { changes: Array<[string, PresenceChange]>, listener: (topic: string, change: PresenceChange) => void } {
  const changes: Array<[string, PresenceChange]> = []
  return { changes, listener: (topic, change) => { changes.push([topic, change]) } }
}

/** Registers the presence tests. */
export function presenceConformance (test: TestFunction, options: ConformanceOptions, section: PresenceConformance): void {
  const bound = section.timeout ?? 15_000

  async function withPresence (fn: (presence: PresenceCapability, adapter: RealtimeAdapter) => Promise<void>): Promise<void> {
    const adapter = await options.create()
    try {
      const presence = presenceOf(adapter)
      await presence.start?.()
      await fn(presence, adapter)
    } finally {
      await adapter.close()
    }
  }

  test('presence: one member per device; a join on its first connection, a leave after its last; info kept', () => withPresence(async (presence) => {
    const t = topic('p-members')
    const ada = { deviceId: 'ada', info: { name: 'Ada', tags: ['x'] } }
    assert.deepEqual(await presence.add(t, 'c1', ada), { joins: [ada], leaves: [] })
    assert.deepEqual(await presence.add(t, 'c2', ada), NONE, 'a second tab of the device is no join')
    assert.deepEqual(await presence.add(t, 'c3', { deviceId: 'bob' }), { joins: [{ deviceId: 'bob' }], leaves: [] })
    assert.deepEqual(await presence.add(t, 'c1', ada), NONE, 'adding a recorded connection again changes nothing')
    assert.deepEqual(byDevice(await presence.list(t)), [ada, { deviceId: 'bob' }], 'info only where given')
    assert.deepEqual(await presence.list(topic('p-other')), [], 'topics are isolated')
    assert.deepEqual(await presence.remove(t, 'c1'), NONE, 'the device keeps a connection')
    assert.deepEqual(await presence.remove(t, 'c2'), { joins: [], leaves: [ada] })
    assert.deepEqual(await presence.remove(t, 'c2'), NONE, 'removing twice changes nothing')
    assert.deepEqual(await presence.remove(topic('p-never'), 'c1'), NONE)
    assert.deepEqual(await presence.list(t), [{ deviceId: 'bob' }])
    assert.deepEqual(await presence.remove(t, 'c3'), { joins: [], leaves: [{ deviceId: 'bob' }] })
    assert.deepEqual(await presence.list(t), [])
  }))

  test('presence: close() removes the instance\'s own members first and reports their leaves', async () => {
    const observer = options.createPeer === undefined ? undefined : await options.createPeer()
    const adapter = await options.create()
    try {
      const presence = presenceOf(adapter)
      await presence.start?.()
      const seen = recorder()
      presence.onChange(seen.listener)
      const t1 = topic('p-close-1')
      const t2 = topic('p-close-2')
      await presence.add(t1, 'c1', { deviceId: 'dev1' })
      await presence.add(t1, 'c2', { deviceId: 'dev1' })
      await presence.add(t2, 'c1', { deviceId: 'dev2', info: { n: 2 } })
      await presence.remove(t2, 'c1')
      await presence.add(t2, 'c3', { deviceId: 'dev2', info: { n: 2 } })
      await adapter.close()
      const reported = seen.changes.sort((a, b) => a[0] < b[0] ? -1 : 1)
      assert.deepEqual(reported, [[t1, { joins: [], leaves: [{ deviceId: 'dev1' }] }], [t2, { joins: [], leaves: [{ deviceId: 'dev2', info: { n: 2 } }] }]],
        'one leave per device, to the listener')
      if (observer !== undefined) {
        const other = presenceOf(observer)
        assert.deepEqual([await other.list(t1), await other.list(t2)], [[], []], 'gone for the other nodes as soon as close() resolves')
      }
    } finally {
      await adapter.close()
      await observer?.close()
    }
  })

  const createPeer = options.createPeer
  if (createPeer === undefined) return

  test('presence: members across instances; a device on two nodes joins once and leaves once', () => withPresence(async (presence) => {
    const peer = await createPeer()
    try {
      const other = presenceOf(peer)
      await other.start?.()
      const t = topic('p-across')
      // connIds are unique per node only: the same one on two nodes is two connections.
      assert.deepEqual(await presence.add(t, 'c1', { deviceId: 'dev1', info: 'here' }), { joins: [{ deviceId: 'dev1', info: 'here' }], leaves: [] })
      assert.deepEqual(await other.add(t, 'c1', { deviceId: 'dev1', info: 'here' }), NONE, 'the device is already present through the other node')
      assert.deepEqual(await other.add(t, 'c2', { deviceId: 'dev2' }), { joins: [{ deviceId: 'dev2' }], leaves: [] })
      const both = [{ deviceId: 'dev1', info: 'here' }, { deviceId: 'dev2' }]
      assert.deepEqual(byDevice(await presence.list(t)), both)
      assert.deepEqual(byDevice(await other.list(t)), both)
      assert.deepEqual(await presence.remove(t, 'c1'), NONE, 'still connected through the other node')
      assert.deepEqual(await other.remove(t, 'c1'), { joins: [], leaves: [{ deviceId: 'dev1', info: 'here' }] })
      assert.deepEqual(await presence.list(t), [{ deviceId: 'dev2' }])
    } finally {
      await peer.close()
    }
  }))

  const crash = section.crash
  if (crash === undefined) return

  test('presence: a crashed instance\'s members are removed within the bound, with leaves reported on a survivor', () => withPresence(async (presence) => {
    const seen = recorder()
    presence.onChange(seen.listener)
    const peer = await createPeer()
    try {
      const doomed = presenceOf(peer)
      await doomed.start?.()
      const t = topic('p-crash')
      await presence.add(t, 'c1', { deviceId: 'stays' })
      await doomed.add(t, 'c1', { deviceId: 'goes', info: { last: true } })
      await doomed.add(t, 'c2', { deviceId: 'stays' })
      assert.deepEqual(byDevice(await presence.list(t)), [{ deviceId: 'goes', info: { last: true } }, { deviceId: 'stays' }])
      await crash(peer)
      const started = Date.now()
      // Polled with slack for a busy machine; the elapsed time is asserted against the bound below.
      const left = await pollUntil(() => presence.list(t), (members) => members.length === 1, bound * 2, 'the crashed node\'s members to go')
      const elapsed = Date.now() - started
      assert.deepEqual(left, [{ deviceId: 'stays' }], 'a device still connected elsewhere stays')
      assert.ok(elapsed <= bound, `removed after ${elapsed} ms, bound ${bound} ms`)
      // The sweep's report may reach the listener a little after a concurrent list() saw the member gone (two
      // replies read together, resolved through promise chains of different lengths): wait for it, then count.
      await pollUntil(async () => seen.changes.length, (n) => n > 0, 2000, 'the leave reported here')
      assert.deepEqual(seen.changes, [[t, { joins: [], leaves: [{ deviceId: 'goes', info: { last: true } }] }]], 'the leave, reported once here')
    } finally {
      await peer.close()
    }
  }))
}
