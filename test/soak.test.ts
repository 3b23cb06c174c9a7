import t from 'tap'
import { runSoak } from '../bench/soak.js'

t.test('a short soak leaves no registry entry and no Redis subscription', async (t) => {
  const result = await runSoak({ cycles: 300, concurrency: 20 })
  t.equal(result.after.connections, 0)
  t.equal(result.after.topics, 0, 'registry empty')
  t.equal(result.redisChannelsLeft, 0, 'no Redis channel subscribed')
})
