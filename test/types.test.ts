/**
 * Static types of the public API. `tsc --noEmit` (run by `npm test`) checks this file: each `@ts-expect-error`
 * fails the type check if the line below it compiles, so a wrong payload that compiles is a failing test.
 */
import t from 'tap'
import Fastify from 'fastify'
import Type, { type Static } from 'typebox'
import realtimePlugin, { type RealtimeAdapter, type RealtimePluginOptions, memoryAdapter } from '../lib/index.js'

const typeActions = {
  'types.point': Type.Object({ x: Type.Number(), y: Type.Number() })
}

declare module '../lib/index.js' {
  interface RealtimeActions { 'types.point': typeof typeActions['types.point'] }
}

t.test('publish and sendToDevice are typed by the registered actions', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const options: RealtimePluginOptions<typeof typeActions> = { actions: typeActions, adapter: memoryAdapter() }
  await app.register(realtimePlugin, options)
  await app.ready()

  const point: Static<typeof typeActions['types.point']> = { x: 1, y: 2 }
  await app.realtime.publish('room', 'types.point', point)
  await app.realtime.sendToDevice('dev', 'types.point', { x: 0, y: 0 })
  // @ts-expect-error: wrong payload type
  await t.rejects(app.realtime.publish('room', 'types.point', { x: 'one', y: 2 }), { code: 'FST_REALTIME_VALIDATION_FAILED' })
  // @ts-expect-error: missing property
  await t.rejects(app.realtime.sendToDevice('dev', 'types.point', { x: 1 }), { code: 'FST_REALTIME_VALIDATION_FAILED' })
  // @ts-expect-error: unknown action name
  await t.rejects(app.realtime.publish('room', 'types.unknown', {}), { code: 'FST_REALTIME_UNKNOWN_ACTION' })
  const adapter: RealtimeAdapter = app.realtime.adapter
  t.type(adapter.publish, 'function')
})
