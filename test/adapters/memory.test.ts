import t from 'tap'
import { memoryAdapter } from '../../lib/index.js'
import { adapterConformance } from '../../lib/adapters/conformance.js'

adapterConformance((name, fn) => t.test(name, fn), {
  create: () => memoryAdapter(),
  history: {
    // A process restart: everything in memory is gone, and the new instance's streams get new epochs.
    loseStorage: async (adapter) => { await adapter.close(); return memoryAdapter() },
    ttlWait: 1000
  },
  presence: {}
})

t.test('a throwing handler does not stop the other handlers', async (t) => {
  const adapter = memoryAdapter()
  t.teardown(() => adapter.close())
  const got: string[] = []
  await adapter.subscribe('x', () => { throw new Error('boom') })
  await adapter.subscribe('x', (m) => got.push(m))
  await adapter.publish('x', 'still delivered')
  t.same(got, ['still delivered'])
})

t.test('option errors', async (t) => {
  t.throws(() => memoryAdapter({ historyMetaTtl: 0 }), { code: 'FST_REALTIME_INVALID_OPTION' })
  t.throws(() => memoryAdapter({ historyMetaTtl: 2.5 }), { code: 'FST_REALTIME_INVALID_OPTION' })
})

t.test('history: a stream unused for historyMetaTtl ms starts over under a new epoch', async (t) => {
  const adapter = memoryAdapter({ historyMetaTtl: 200 })
  t.teardown(() => adapter.close())
  const first = await adapter.history!.publish('x', 'a', { size: 10, ttl: 100 })
  t.equal(first.offset, 1)
  const deadline = Date.now() + 5000
  let page = await adapter.history!.read('x', { limit: 10 })
  // Each read keeps the position alive for another historyMetaTtl, so poll with the adapter's own clock: wait until
  // the position is older than the ttl before the next read.
  while (page.epoch === first.epoch && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    page = await adapter.history!.read('x', { limit: 10 })
  }
  t.not(page.epoch, first.epoch, 'a new epoch')
  t.same({ offset: page.offset, messages: page.messages }, { offset: 0, messages: [] })
})
