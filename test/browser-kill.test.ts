/**
 * The two-tab demo of docs/recovery.md as a test: two example server processes (examples/server.ts) on one Redis,
 * a chromium tab on each, chatting while node A is SIGKILLed and started again on the same port. Tab A reconnects
 * and shows every message once (none missing, none doubled, no "not recovered" notice); tab B's online list drops
 * device A within the presence bound and regains it.
 */
import t from 'tap'
import type { Page } from 'playwright-core'
import { freePort } from '../bench/common.js'
import { bundleClient } from '../examples/build-client.js'
import { join, launchBrowser, received, send, WAIT, waitForOpen, watchPage } from './helpers/browser.js'
import { startExampleNode, type ExampleNode } from './helpers/example-process.js'
import { startRedis } from './helpers/redis.js'

/** The example's PRESENCE_TIMEOUT here (ms): how long a dead node's devices stay online at most. */
const PRESENCE_TIMEOUT = 3000
/** Slack on top of that bound for the diff to reach the page and be rendered (ms). */
const RENDER_SLACK = 2000

/** The lobby messages a page shows, as [offset, text], in list order (newest first). */
async function shown (page: Page): Promise<Array<[number, string]>> {
  return page.locator('#messages li[data-channel="lobby"]').evaluateAll((items) =>
    items.map((li) => [Number((li as HTMLElement).dataset.offset), (li as HTMLElement).dataset.text ?? ''] as [number, string]))
}

t.test('two example nodes on one Redis: a tab survives the kill of its node without a gap; the other sees it leave and return', async (t) => {
  const redis = await startRedis()
  t.teardown(() => redis.stop())
  const env = { REDIS_URL: redis.url, PRESENCE_TIMEOUT: String(PRESENCE_TIMEOUT) }
  let nodeA: ExampleNode = await startExampleNode(await freePort(), env)
  t.teardown(() => nodeA.kill())
  const nodeB = await startExampleNode(await freePort(), env)
  t.teardown(() => nodeB.stop())

  const { code } = await bundleClient()
  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const open = async (name: string, port: number): Promise<{ page: Page, problems: string[] }> => {
    const context = await browser.newContext({ viewport: { width: 900, height: 900 } })
    // The example serves examples/public/client.js once built (`npm run build:client`): here, the bundle in memory.
    await context.route('**/client.js', (route) => route.fulfill({ body: code, contentType: 'text/javascript; charset=utf-8' }))
    const page = await context.newPage()
    const problems = watchPage(page, name)
    await page.goto(`http://127.0.0.1:${port}/`)
    await waitForOpen(page)
    return { page, problems }
  }
  const { page: a, problems: problemsA } = await open('A', nodeA.port)
  const { page: b, problems: problemsB } = await open('B', nodeB.port)
  const idA = await a.inputValue('#deviceId')
  const idB = await b.inputValue('#deviceId')
  await join(a, 'lobby')
  await join(b, 'lobby')
  await a.locator(`#online li[data-channel="lobby"][data-device="${idB}"]`).waitFor(WAIT)
  await b.locator(`#online li[data-channel="lobby"][data-device="${idA}"]`).waitFor(WAIT)

  await send(a, 'a1')
  await send(b, 'b1')
  await received(a, 'lobby', idB, 'b1')
  await received(b, 'lobby', idA, 'a1')

  // Node A crashes; B's tab chats on while A's tab is away.
  await nodeA.kill()
  const killed = Date.now()
  await send(b, 'b2')
  await send(b, 'b3')
  await b.locator(`#online li[data-device="${idA}"]`).waitFor({ state: 'detached', timeout: PRESENCE_TIMEOUT + RENDER_SLACK + 10_000 })
  const left = Date.now() - killed
  t.ok(left <= PRESENCE_TIMEOUT + RENDER_SLACK, `tab B dropped device A ${left} ms after the kill (bound ${PRESENCE_TIMEOUT} ms + ${RENDER_SLACK} ms to render)`)
  await send(b, 'b4')

  // Node A starts again on the same port: tab A reconnects (its backoff may wait up to 30 s) and recovers.
  nodeA = await startExampleNode(nodeA.port, env)
  await a.locator('#events li[data-rejoined="lobby"]').waitFor({ timeout: 45_000 })
  t.equal(await a.getAttribute('#events li[data-rejoined="lobby"]', 'data-recovered'), 'true', 'tab A: recovered')
  await received(a, 'lobby', idB, 'b4')
  await b.locator(`#online li[data-channel="lobby"][data-device="${idA}"]`).waitFor(WAIT)
  t.pass('tab B lists device A again')
  await send(a, 'a2')
  await received(b, 'lobby', idA, 'a2')
  await received(a, 'lobby', idA, 'a2')

  const expected: Array<[number, string]> = [[1, 'a1'], [2, 'b1'], [3, 'b2'], [4, 'b3'], [5, 'b4'], [6, 'a2']]
  t.same((await shown(a)).reverse(), expected, 'tab A: every message once, in order, nothing missing')
  t.same((await shown(b)).reverse(), expected, 'tab B: the same')
  t.equal(await a.locator('#notices li').count(), 0, 'tab A shows no "not recovered" notice')
  t.same([...problemsA, ...problemsB], [], 'no page errors')
})
