/**
 * What every target process does the same way: PORT from the environment, a `ready <port>` line on stdout once
 * listening (the harness waits for it), a forced GC on SIGUSR2 when started with --expose-gc (the harness's
 * memory scenario calls it before reading VmRSS), and a clean exit on SIGTERM/SIGINT so `--cpu-prof` writes
 * its profile.
 */
import { renameSync, writeFileSync } from 'node:fs'

export const port = Number(process.env.PORT ?? 0)
export const host = '127.0.0.1'
export const redisUrl = process.env.REDIS_URL === undefined || process.env.REDIS_URL === '' ? undefined : process.env.REDIS_URL
/** REDIS_CLUSTER=host:port,host:port: start nodes of a Redis Cluster (the `+cluster` targets). */
export const redisCluster = process.env.REDIS_CLUSTER === undefined || process.env.REDIS_CLUSTER === ''
  ? undefined
  : process.env.REDIS_CLUSTER.split(',').map((node) => {
    const at = node.lastIndexOf(':')
    return { host: node.slice(0, at), port: Number(node.slice(at + 1)) }
  })

if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('target: PORT must be set to a port number\n')
  process.exit(2)
}

/** Installs the signal handlers; `close` runs before exit (bounded to 2 s). */
export function lifecycle (close: () => Promise<void> | void): void {
  let exiting = false
  const exit = (): void => {
    if (exiting) return
    exiting = true
    const timer = setTimeout(() => process.exit(0), 2000)
    timer.unref()
    Promise.resolve().then(close).catch(() => {}).finally(() => process.exit(0))
  }
  process.once('SIGTERM', exit)
  process.once('SIGINT', exit)
  // Not SIGUSR1: Node reserves it for the inspector. After the GC, process.memoryUsage() goes to BENCH_MEM_FILE
  // (written to a temporary name and renamed, so a reader never sees half a file).
  process.on('SIGUSR2', () => {
    const gc = (globalThis as { gc?: () => void }).gc
    gc?.()
    const file = process.env.BENCH_MEM_FILE
    if (file !== undefined && file !== '') {
      try {
        writeFileSync(`${file}.tmp`, JSON.stringify({ at: Date.now(), ...process.memoryUsage() }))
        renameSync(`${file}.tmp`, file)
      } catch {}
    }
  })
  // The harness owns our stdout pipe; if it dies (even by SIGKILL) we must not linger as an orphan.
  process.stdout.on('error', exit)
  const parent = process.ppid
  setInterval(() => { if (process.ppid !== parent) exit() }, 1000).unref()
}

export function ready (): void {
  process.stdout.write(`ready ${port}\n`)
}
