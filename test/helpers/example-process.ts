/**
 * Runs examples/server.ts as a user does (`node --import tsx examples/server.ts`), in its own process, with the
 * environment given; resolves once it logged its "chat page" line (rejects when it exits first).
 * - `startExample(t, env)`: on a free loopback port, SIGKILLed at the test's teardown.
 * - `startExampleNode(port, env)`: on a given port, so a test can SIGKILL it (a crash: no close, no cleanup) and start
 *   it again on the same port; the test stops it with `kill()` or `stop()`.
 * Either way the process is SIGKILLed at exit if it is still running.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../bench/common.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface ExampleProcess {
  port: number
  child: ChildProcess
  /** Its standard output so far (the pino log lines). */
  log: () => string
}

export interface ExampleNode extends ExampleProcess {
  /** SIGKILL, waiting for the process to exit. */
  kill: () => Promise<void>
  /** SIGTERM (graceful close), waiting for the process to exit. */
  stop: () => Promise<void>
}

/** Starts the example on 127.0.0.1:`port` with `env` added to this process's environment (PORT and HOST set here). */
export async function startExampleNode (port: number, env: Record<string, string>): Promise<ExampleNode> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/server.ts'], {
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
  return { port, child, log: () => log, kill: () => exited('SIGKILL'), stop: () => exited('SIGTERM') }
}

/** Starts the example on a free loopback port with `env` added; SIGKILLed at the test's teardown if still running. */
export async function startExample (t: { teardown: (fn: () => void) => void }, env: Record<string, string>): Promise<ExampleProcess> {
  const node = await startExampleNode(await freePort(), env)
  t.teardown(() => { if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill('SIGKILL') })
  return node
}
