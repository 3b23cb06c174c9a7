import t from 'tap'
import { memoryAdapter } from '../../lib/index.js'
import { adapterConformance } from '../../lib/adapters/conformance.js'

adapterConformance((name, fn) => t.test(name, fn), { create: () => memoryAdapter() })

t.test('a throwing handler does not stop the other handlers', async (t) => {
  const adapter = memoryAdapter()
  t.teardown(() => adapter.close())
  const got: string[] = []
  await adapter.subscribe('x', () => { throw new Error('boom') })
  await adapter.subscribe('x', (m) => got.push(m))
  await adapter.publish('x', 'still delivered')
  t.same(got, ['still delivered'])
})
