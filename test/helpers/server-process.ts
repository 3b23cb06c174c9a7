/**
 * Starts test/fixtures/server-process.ts as a child process and talks to it over IPC.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { RealtimePluginOptions } from '../../lib/index.js'

export interface ServerProcess {
  url: string
  pid: number
  /** Sends one request and resolves with the first reply of `replyType`. */
  request: (msg: Record<string, unknown>, replyType: string) => Promise<any>
  /** Resident set size now and its peak so far (VmRSS, VmHWM), in bytes. */
  memory: () => { rss: number, peak: number }
  stop: () => Promise<void>
}

const script = fileURLToPath(new URL('../fixtures/server-process.ts', import.meta.url))

export async function startServerProcess (options: RealtimePluginOptions<any> = {}): Promise<ServerProcess> {
  const child: ChildProcess = fork(script, {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, REALTIME_OPTIONS: JSON.stringify(options) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const reap = (): void => { child.kill('SIGKILL') }
  process.once('exit', reap)
  child.once('exit', () => process.off('exit', reap))
  const [ready] = await once(child, 'message') as [{ type: string, port: number }]
  const request = async (msg: Record<string, unknown>, replyType: string): Promise<any> => {
    const reply = new Promise((resolve) => {
      const onMessage = (m: { type: string }): void => {
        if (m.type !== replyType) return
        child.off('message', onMessage)
        resolve(m)
      }
      child.on('message', onMessage)
    })
    child.send(msg)
    return reply
  }
  const kib = (status: string, key: string): number => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)![1]) * 1024
  return {
    url: `ws://127.0.0.1:${ready.port}/ws`,
    pid: child.pid!,
    request,
    memory () {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8')
      return { rss: kib(status, 'VmRSS'), peak: kib(status, 'VmHWM') }
    },
    async stop () {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.disconnect()
      await exited
    }
  }
}
