/**
 * Shared by the harness, the load generator and the targets: the action of the benchmark, /proc readers,
 * the free-port helper, and small statistics.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { once } from 'node:events'
import { createServer } from 'node:net'
import type { LoadResult, Protocol, Scenario } from './load.js'

/** The one action every target accepts; its payload is `{ t, pad }`. */
export const ACTION = 'bench.msg'
/** The channel of S1, S2, S3 and S5. */
export const CHANNEL = 'bench'

/**
 * A payload of about `bytes` bytes of JSON: `t` is the publisher's `performance.now()` in ms (receivers are
 * in the same process, so the clocks are the same) and `pad` fills the rest.
 */
export function payload (t: number, pad: string): { t: number, pad: string } {
  return { t, pad }
}

/** The pad string that makes `{"t":<ms with 3 decimals>,"pad":"..."}` about `bytes` bytes long. */
export function padFor (bytes: number): string {
  const sample = JSON.stringify(payload(123456.789, ''))
  return 'x'.repeat(Math.max(0, bytes - sample.length))
}

let clockTicks: number | undefined
/** `getconf CLK_TCK` (jiffies per second of /proc/<pid>/stat), cached. */
export function clkTck (): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    } catch {
      clockTicks = 100
    }
    if (!Number.isFinite(clockTicks) || clockTicks <= 0) clockTicks = 100
  }
  return clockTicks
}

/** CPU time of a process in seconds, from /proc/<pid>/stat utime (field 14) and stime (field 15). */
export interface CpuTime { user: number, system: number }

export function readCpu (pid: number): CpuTime {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state), so field n is fields[n - 3].
  const tck = clkTck()
  return { user: Number(fields[14 - 3]) / tck, system: Number(fields[15 - 3]) / tck }
}

export function cpuDelta (a: CpuTime, b: CpuTime): CpuTime {
  return { user: b.user - a.user, system: b.system - a.system }
}

/** Busy and total CPU seconds of the whole machine (all cores), from the first line of /proc/stat. */
export function readMachineCpu (): { busy: number, total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal (guest time is already counted in user)
  const total = v.slice(0, 8).reduce((s, x) => s + x, 0)
  const idle = (v[3] ?? 0) + (v[4] ?? 0)
  const tck = clkTck()
  return { busy: (total - idle) / tck, total: total / tck }
}

/** Resident set size of a process in KiB, from /proc/<pid>/status VmRSS. */
export function readRssKiB (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  if (m === null) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(m[1])
}

/** The soft limit on open files of this process, from /proc/self/limits (Infinity when unlimited). */
export function openFilesLimit (): number {
  try {
    const m = /^Max open files\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    if (m === null) return Infinity
    return m[1] === 'unlimited' ? Infinity : Number(m[1])
  } catch {
    return Infinity
  }
}

/** A free TCP port on 127.0.0.1 (listen on 0, read it, close). */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/** The q-quantile (0..1) of ascending `sorted`, nearest rank. NaN when empty. */
export function quantile (sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length
  if (n === 0) return NaN
  const rank = Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))
  return sorted[rank]!
}

export function median (values: number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2
}

export const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/**
 * The machine's count of connections dropped because a listen queue was full (TcpExt ListenOverflows, from
 * /proc/net/netstat): SYNs the kernel discarded, which the client retransmits after 1 s, 3 s, 7 s... NaN if absent.
 */
export function readListenOverflows (): number {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n')
    for (let i = 0; i + 1 < lines.length; i += 2) {
      if (!lines[i]!.startsWith('TcpExt:')) continue
      const names = lines[i]!.split(/\s+/)
      const values = lines[i + 1]!.split(/\s+/)
      const k = names.indexOf('ListenOverflows')
      return k < 0 ? NaN : Number(values[k])
    }
  } catch {}
  return NaN
}

/**
 * A LoadResult with every count zero and latencies NaN: what a scenario starts from and fills in, or prints as is
 * when it failed (with its `errors`, the array the load generator appends to).
 */
export function emptyLoadResult (scenario: Scenario, protocol: Protocol, members: number, errors: string[]): LoadResult {
  return {
    scenario,
    protocol,
    members,
    seconds: 0,
    deliveries: 0,
    deliveriesPerSec: 0,
    published: 0,
    acks: 0,
    latency: { samples: 0, p50: NaN, p99: NaN, max: NaN },
    serverCpu: [],
    auxCpu: [],
    clientCpu: { user: 0, system: 0 },
    otherCpuS: 0,
    windowMonoUs: [0, 0],
    connect: { count: 0, seconds: 0, perSec: 0 },
    missing: 0,
    errors
  }
}
