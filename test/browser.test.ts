/**
 * Browser end-to-end test: two chromium pages of the example chat (examples/public/index.html with the bundled
 * client) exchange messages, survive a server restart on the same port, and exchange messages again.
 * Writes test-artifacts/browser.png.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Page } from 'playwright-core'
import { bundleClient } from '../examples/build-client.js'
import { launchBrowser, startExampleServer, watchPage } from './helpers/browser.js'

const WAIT = { timeout: 15_000 }
const screenshot = fileURLToPath(new URL('../test-artifacts/browser.png', import.meta.url))

/** Waits until the page's connection state is `open` (or, with `open` false, anything else). */
async function waitForOpen (page: Page, open = true): Promise<void> {
  await page.waitForFunction((open) => (document.getElementById('state')?.dataset.state === 'open') === open, open, WAIT)
}

async function join (page: Page, channel: string): Promise<void> {
  await page.fill('#channel', channel)
  await page.click('#join')
  await page.locator(`#joined li[data-channel="${channel}"]`).waitFor(WAIT)
}

async function send (page: Page, text: string): Promise<void> {
  await page.fill('#text', text)
  await page.click('#send')
  // The page clears the field once the server acknowledged the publish.
  await page.waitForFunction(() => (document.getElementById('text') as HTMLInputElement).value === '', undefined, WAIT)
}

/** Waits until `page` shows the delivery of `text` from `from` on `channel`. */
async function received (page: Page, channel: string, from: string, text: string): Promise<void> {
  await page.locator(`#messages li[data-channel="${channel}"][data-from="${from}"][data-text="${text}"]`).waitFor(WAIT)
}

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
  await join(b, 'lobby')
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
  t.equal(await a.locator('#joined li[data-channel="lobby"]').count(), 1)
  await send(a, 'again from A')
  await received(b, 'lobby', idA, 'again from A')
  await send(b, 'again from B')
  await received(a, 'lobby', idB, 'again from B')

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

  t.same(problems.flat(), [], 'no page errors')
})
