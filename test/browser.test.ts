/**
 * Browser end-to-end tests: two chromium pages of the example chat (examples/public/index.html with the bundled
 * client) show recent messages from history on join and who is online, exchange messages, survive a server restart
 * on the same port (saying the re-join was not recovered: the memory adapter lost the stream), and exchange
 * messages again (writes
 * test-artifacts/browser.png); a page's client reconnects at once on the window's `online` event.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import Fastify from 'fastify'
import type { Page } from 'playwright-core'
import realtimePlugin from '../lib/index.js'
import { bundleClient } from '../examples/build-client.js'
import { join, launchBrowser, received, send, startExampleServer, WAIT, waitForOpen, watchPage } from './helpers/browser.js'
import { serverSockets, trackServerSockets } from './helpers/wait.js'

const screenshot = fileURLToPath(new URL('../test-artifacts/browser.png', import.meta.url))

t.test('the bundled client holds no Node import', async (t) => {
  const { code, metafile } = await bundleClient()
  const inputs = Object.keys(metafile.inputs)
  t.same(inputs.filter((file) => !file.startsWith('lib/')), [], 'only lib/ sources are bundled')
  t.same(inputs.filter((file) => !file.startsWith('lib/client/') && file !== 'lib/constants.ts'), [],
    'nothing of the server (protocol validators, plugin) is bundled')
  t.same(Object.values(metafile.outputs).flatMap((o) => o.imports), [], 'the bundle imports nothing')
  t.notMatch(code, /from\s*["'](node:|ws["'])/)
})

t.test('two pages chat, survive a server restart on the same port, and chat again', async (t) => {
  const { code } = await bundleClient()
  let { app, port } = await startExampleServer(0, code)
  t.teardown(() => app.close())
  const browser = await launchBrowser()
  t.teardown(() => browser.close())

  const pages: Page[] = []
  const problems: string[][] = []
  for (const name of ['A', 'B']) {
    const context = await browser.newContext({ viewport: { width: 900, height: 900 } })
    const page = await context.newPage()
    problems.push(watchPage(page, name))
    await page.goto(`http://127.0.0.1:${port}/`)
    pages.push(page)
  }
  const [a, b] = pages as [Page, Page]

  await waitForOpen(a)
  await waitForOpen(b)
  const idA = await a.inputValue('#deviceId')
  const idB = await b.inputValue('#deviceId')
  t.match(idA, /^web-[a-z0-9]+$/, 'a random deviceId is shown in the field')
  t.not(idA, idB)
  t.match(await a.textContent('#stateInfo'), idA, 'the page shows the welcomed deviceId')

  await join(a, 'lobby')
  await send(a, 'early from A')
  await received(a, 'lobby', idA, 'early from A')
  await join(b, 'lobby')
  // B joined after it was sent: the page shows it from the channel's history, once.
  await b.locator(`#messages li[data-history][data-channel="lobby"][data-from="${idA}"][data-text="early from A"]`).waitFor(WAIT)
  t.equal(await b.locator('#messages li[data-text="early from A"]').count(), 1, 'a recent message from history, shown once')
  // Who is online, on both pages (presence snapshot and diffs).
  await a.locator(`#online li[data-channel="lobby"][data-device="${idB}"]`).waitFor(WAIT)
  await b.locator(`#online li[data-channel="lobby"][data-device="${idA}"]`).waitFor(WAIT)
  t.equal(await a.locator('#notices li').count(), 0, 'no notice while nothing was missed')
  await send(a, 'hello from A')
  await received(b, 'lobby', idA, 'hello from A')
  await send(b, 'hello from B')
  await received(a, 'lobby', idB, 'hello from B')

  // Stop the server: both pages see 1001 and retry with backoff while it is down.
  await app.close()
  await waitForOpen(a, false)
  await waitForOpen(b, false)
  for (const page of [a, b]) {
    await page.locator('#events li', { hasText: 'closed 1001 server shutting down, will reconnect' }).waitFor(WAIT)
    await page.locator('#events li', { hasText: 'reconnecting: attempt 1 in' }).waitFor(WAIT)
  }
  t.pass('both pages saw 1001 and scheduled a reconnect')

  // Restart on the same port: both pages reconnect with their deviceId and re-join "lobby".
  const reconnected = new Set<string>();
  ({ app } = await startExampleServer(port, code))
  app.websocketServer.on('connection', (_socket: unknown, req: { url?: string }) => {
    reconnected.add(new URL(req.url ?? '/', 'http://x').searchParams.get('deviceId') ?? '')
  })
  await waitForOpen(a)
  await waitForOpen(b)
  t.same([...reconnected].sort(), [idA, idB].sort(), 'both pages reconnected with their own deviceId')
  // The restarted server (memory adapter) lost the channel's stream: each page says its re-join was not recovered.
  for (const page of [a, b]) {
    await page.locator('#notices li[data-channel="lobby"][data-notice="not-recovered"]').waitFor(WAIT)
    await page.locator('#events li[data-rejoined="lobby"][data-recovered="false"]').waitFor(WAIT)
  }
  t.pass('both pages show that lobby was not recovered')
  t.equal(await a.locator('#joined li[data-channel="lobby"]').count(), 1)
  await send(a, 'again from A')
  await received(b, 'lobby', idA, 'again from A')
  await send(b, 'again from B')
  await received(a, 'lobby', idB, 'again from B')

  // The send goes through the handled chat.send: the reply's server id is shown to the sender, and every page
  // shows the stored message with that id.
  const stored = await a.locator('#events li[data-stored]').first().getAttribute('data-stored')
  t.match(stored, /^m\d+$/, `the sender shows the server id of its message (${stored})`)
  t.equal(await a.locator(`#messages li[data-id="${stored}"][data-text="again from A"]`).count(), 1,
    'the sender got its stored message with that id')

  // An error reply is shown: an empty message fails the action's schema (minLength 1).
  await a.evaluate(() => {
    const text = document.getElementById('text') as HTMLInputElement
    text.required = false
  })
  await a.fill('#text', '')
  await a.click('#send')
  await a.locator('#errors li[data-code="VALIDATION_FAILED"]').waitFor(WAIT)

  await mkdir(fileURLToPath(new URL('../test-artifacts/', import.meta.url)), { recursive: true })
  await a.screenshot({ path: screenshot, fullPage: true })
  const png = await readFile(screenshot)
  t.same([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], `screenshot written to ${screenshot}`)

  // A kick (app.realtime.disconnect, close code 4001) ends page B for good and leaves page A connected.
  await app.realtime.disconnect(idB, { code: 4001, reason: 'kicked' })
  await b.locator('#events li[data-kicked="4001"]').waitFor(WAIT)
  await waitForOpen(b, false)
  t.match(await b.textContent('#stateInfo'), /kicked by the server: kicked/, 'the kicked page says so')
  t.equal(await b.getAttribute('#state', 'data-state'), 'closed', 'a kick is terminal: no reconnect')
  t.equal(await a.getAttribute('#state', 'data-state'), 'open', 'the other page stays open')
  await a.locator(`#online li[data-device="${idB}"]`).waitFor({ ...WAIT, state: 'detached' })
  t.pass('the kicked device left the online list of the other page')

  t.same(problems.flat(), [], 'no page errors')
})

t.test('a client waiting out its backoff reconnects at once when the window fires online', async (t) => {
  const { code } = await bundleClient()
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'silent' } })
  t.teardown(() => app.close())
  app.get('/client.js', (_request, reply) => { reply.type('text/javascript; charset=utf-8').send(code) })
  // A 10-minute backoff: within this test only the online event can bring the client back.
  app.get('/', (_request, reply) => {
    reply.type('text/html; charset=utf-8').send(`<!doctype html><title>online</title><link rel="icon" href="data:,"><script type="module">
      import { createClient } from '/client.js'
      const client = createClient('/ws', { deviceId: 'online-1', minDelay: 600000, maxDelay: 600000 })
      window.client = client
      window.opens = 0
      window.delays = []
      client.addEventListener('open', () => { window.opens++ })
      client.addEventListener('reconnecting', (event) => { window.delays.push(event.detail.delay) })
    </script>`)
  })
  await app.register(realtimePlugin, {})
  trackServerSockets(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  let connections = 0
  app.websocketServer.on('connection', () => { connections++ })

  const browser = await launchBrowser()
  t.teardown(() => browser.close())
  const context = await browser.newContext()
  const page = await context.newPage()
  const problems = watchPage(page, 'online')
  await page.goto(`http://127.0.0.1:${port}/`)
  type Win = { client: { state: string }, opens: number, delays: number[] }
  await page.waitForFunction(() => (window as unknown as Win).client?.state === 'open', undefined, WAIT)

  // Offline emulation does not end an open socket: the server drops it while the page is offline.
  await context.setOffline(true)
  t.equal(await page.evaluate(() => navigator.onLine), false, 'the page is offline')
  for (const socket of serverSockets(app)) socket.terminate()
  await page.waitForFunction(() => (window as unknown as Win).client.state === 'reconnecting', undefined, WAIT)
  t.same(await page.evaluate(() => (window as unknown as Win).delays), [600_000], 'the next attempt is 10 minutes away')
  t.equal(connections, 1)

  await context.setOffline(false)
  await page.waitForFunction(() => (window as unknown as Win).opens === 2, undefined, WAIT)
  t.equal(await page.evaluate(() => (window as unknown as Win).client.state), 'open', 'reconnected on online')
  t.equal(connections, 2)
  t.same(problems, [], 'no page errors')
})
