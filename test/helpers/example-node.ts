/**
 * Runs examples/server.ts as a user does (`tsx examples/server.ts`), in its own process on a given port, so a test
 * can SIGKILL it (a crash: no close, no cleanup) and start it again on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface ExampleNode {
  port: number
  /** Everything the process printed on stdout so far (pino's JSON lines). */
  log: () => string
  /** SIGKILL, waiting for the process to exit. */
  kill: () => Promise<void>
  /** SIGTERM (the example closes the plugin and exits 0), waiting for the exit. */
  stop: () => Promise<void>
}

/**
 * Starts the example on 127.0.0.1:`port` with `env` added (e.g. REDIS_URL, PRESENCE_TIMEOUT); resolves once it
 * logged its "chat page" line. Rejects when it exits first.
 */
export async function startExampleNode (port: number, env: Record<string, string>): Promise<ExampleNode> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'examples/server.ts'], {
    cwd: root,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const reap = (): void => { child.kill('SIGKILL') }
  process.once('exit', reap)
  child.once('exit', () => process.off('exit', reap))
  let log = ''
  await new Promise<void>((resolve, reject) => {
    // Read stdout all along: a full pipe would block the example.
    child.stdout!.on('data', (chunk: Buffer) => {
      log += chunk.toString()
      if (log.includes('chat page')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`example exited with ${code}: ${log}`)))
  })
  const exited = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const done = once(child, 'exit')
    child.kill(signal)
    await done
  }
  return { port, log: () => log, kill: () => exited('SIGKILL'), stop: () => exited('SIGTERM') }
}
