/**
 * Browser test support: headless Debian chromium through playwright-core, and an example-like server (the
 * chat page of examples/public, the client bundled in memory at /client.js, the realtime plugin) on a loopback port.
 */
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyStatic from '@fastify/static'
import { chromium, type Browser, type Page } from 'playwright-core'
import realtimePlugin from '../../lib/index.js'
import { chatActions } from '../../examples/actions.js'

/** Chromium binary: CHROMIUM_PATH, else Debian's /usr/bin/chromium (`.ci/run` installs it). */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Launches headless chromium. Without the background-networking flags its connections may be refused. */
export async function launchBrowser (): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync']
  })
}

/**
 * Starts the example-like server on `port` (0 for a free one): static files of examples/public, `clientJs`
 * served as /client.js, and the realtime plugin with the example's actions (examples/actions.ts), history (size 100, ttl 10 min) and
 * presence on every channel, as examples/server.ts.
 */
export async function startExampleServer (port: number, clientJs: string): Promise<{ app: FastifyInstance, port: number }> {
  const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'silent' } })
  await app.register(fastifyStatic, { root: fileURLToPath(new URL('../../examples/public/', import.meta.url)) })
  app.get('/client.js', (_request, reply) => {
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-store').send(clientJs)
  })
  await app.register(realtimePlugin, {
    actions: chatActions(() => app.realtime),
    history: { size: 100, ttl: 10 * 60_000 },
    presence: true
  })
  await app.listen({ port, host: '127.0.0.1' })
  return { app, port: (app.server.address() as { port: number }).port }
}

/** Problems a page reported: uncaught exceptions, and console errors other than failed WebSocket connections. */
export function watchPage (page: Page, name: string): string[] {
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(`${name} pageerror: ${err.message}`))
  page.on('console', (msg) => {
    // While the server is down, chromium logs each refused connection attempt: expected during a restart.
    if (msg.type() === 'error' && !/WebSocket connection to .* failed/.test(msg.text())) {
      problems.push(`${name} console.error: ${msg.text()} (${msg.location().url})`)
    }
  })
  return problems
}

/** Bound of each wait on a page (ms). */
export const WAIT = { timeout: 15_000 }
/** Waits until the page's connection state is `open` (or, with `open` false, anything else). */
export async function waitForOpen (page: Page, open = true): Promise<void> {
  await page.waitForFunction((open) => (document.getElementById('state')?.dataset.state === 'open') === open, open, WAIT)
}

/** Joins `channel` through the page's form; resolves once the page lists it as joined. */
export async function join (page: Page, channel: string): Promise<void> {
  await page.fill('#channel', channel)
  await page.click('#join')
  await page.locator(`#joined li[data-channel="${channel}"]`).waitFor(WAIT)
}

/** Sends `text` through the page's form; resolves once the server acknowledged it (the field is cleared). */
export async function send (page: Page, text: string): Promise<void> {
  await page.fill('#text', text)
  await page.click('#send')
  // The page clears the field once the server acknowledged the publish.
  await page.waitForFunction(() => (document.getElementById('text') as HTMLInputElement).value === '', undefined, WAIT)
}

/** Waits until `page` shows the delivery of `text` from `from` on `channel`. */
export async function received (page: Page, channel: string, from: string, text: string): Promise<void> {
  await page.locator(`#messages li[data-channel="${channel}"][data-from="${from}"][data-text="${text}"]`).waitFor(WAIT)
}
