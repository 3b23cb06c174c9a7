/**
 * Starts test/fixtures/redis-node.ts as a child process (a node that can be killed like a crashed server).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

export interface RedisNode {
  url: string
  port: number
  /** SIGKILL (a crash: no close, no cleanup), waiting for the process to exit. */
  kill: () => Promise<void>
  /** Graceful stop (app.close()). */
  stop: () => Promise<void>
}

const script = fileURLToPath(new URL('../fixtures/redis-node.ts', import.meta.url))

/** Starts a node on `port` (0: any free one); `heartbeatInterval` in ms (the plugin's option). */
export async function startRedisNode (redisUrl: string, port = 0, presenceTimeout = 15_000, heartbeatInterval = 30_000): Promise<RedisNode> {
  const child: ChildProcess = fork(script, {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, REDIS_URL: redisUrl, PORT: String(port), PRESENCE_TIMEOUT: String(presenceTimeout), HEARTBEAT_INTERVAL: String(heartbeatInterval) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const reap = (): void => { child.kill('SIGKILL') }
  process.once('exit', reap)
  child.once('exit', () => process.off('exit', reap))
  const [ready] = await once(child, 'message') as [{ type: string, port: number }]
  const exited = (): Promise<unknown> => child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit')
  return {
    port: ready.port,
    url: `ws://127.0.0.1:${ready.port}/ws`,
    async kill () {
      const done = exited()
      child.kill('SIGKILL')
      await done
    },
    async stop () {
      const done = exited()
      if (child.connected) child.disconnect()
      await done
    }
  }
}
