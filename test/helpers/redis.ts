/**
 * Spawns a real redis-server on a free loopback port for one test file, and can stop/restart it on the same port.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { freePort } from '../../bench/common.js'

export interface RedisServer {
  port: number
  url: string
  /** Stops the server (SIGKILL when `hard`, like a crash) and waits for the process to exit. */
  stop: (hard?: boolean) => Promise<void>
  /** Starts it again on the same port. */
  start: () => Promise<void>
}

/** Starts redis-server (from PATH) and returns a handle; register `t.teardown(redis.stop)`. */
export async function startRedis (): Promise<RedisServer> {
  const port = await freePort()
  let child: ChildProcess | undefined

  async function start (): Promise<void> {
    const proc = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'notice'
    ], { stdio: ['ignore', 'pipe', 'inherit'] })
    child = proc
    // Never outlive the test process, even when it fails or is killed by a timeout.
    const reap = (): void => { proc.kill('SIGKILL') }
    process.once('exit', reap)
    proc.once('exit', () => process.off('exit', reap))
    // Wait for redis' own ready line (a notice-level log) instead of polling the port.
    await new Promise<void>((resolve, reject) => {
      let out = ''
      const onData = (chunk: Buffer): void => {
        out += chunk.toString()
        if (out.includes('Ready to accept connections')) {
          proc.stdout!.off('data', onData)
          proc.stdout!.resume()
          clearTimeout(deadline)
          resolve()
        }
      }
      proc.stdout!.on('data', onData)
      const deadline = setTimeout(() => reject(new Error(`redis-server not ready after 10 s: ${out}`)), 10_000)
      proc.stdout!.once('close', () => clearTimeout(deadline))
      proc.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)))
      proc.once('error', reject)
    })
  }

  async function stop (hard = false): Promise<void> {
    const proc = child
    child = undefined
    if (proc === undefined || proc.exitCode !== null) return
    const exited = once(proc, 'exit')
    proc.kill(hard ? 'SIGKILL' : 'SIGTERM')
    await exited
  }

  await start()
  return { port, url: `redis://127.0.0.1:${port}`, stop, start }
}
