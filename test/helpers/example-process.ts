/**
 * Runs examples/server.ts as a user does (`node --import tsx examples/server.ts`) on a free loopback port, with the
 * environment given; resolves once it listens. The process is SIGKILLed at the test's teardown and at exit if it
 * is still running.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../bench/common.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

export interface ExampleProcess {
  port: number
  child: ChildProcess
  /** Its standard output so far (the pino log lines). */
  log: () => string
}

/** Starts the example with `env` added to this process's environment (PORT and HOST are set here). */
export async function startExample (t: { teardown: (fn: () => void) => void }, env: Record<string, string>): Promise<ExampleProcess> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/server.ts'], {
    cwd: root,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const reap = (): void => { child.kill('SIGKILL') }
  process.once('exit', reap)
  t.teardown(() => { process.off('exit', reap); if (child.exitCode === null) child.kill('SIGKILL') })
  let log = ''
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      log += chunk.toString()
      if (log.includes('chat page')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`example exited with ${code}: ${log}`)))
  })
  return { port, child, log: () => log }
}
