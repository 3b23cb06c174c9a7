/**
 * Summarises a V8 CPU profile of a target (written by `npm run bench -- --cpu-prof <dir>`): self time per
 * function, time by category (fan-out path, ws Sender, stream machinery, native write syscalls, GC, ...), and
 * the inclusive time of fastify-realtime's fan-out path: the per-topic fan-out (Topic.emit, lib/topic.ts) and, since the
 * frames are corked per tick, the deferred flush (lib/frame.ts). Only samples inside the
 * measured window are counted when a results file gives it (LoadResult.windowMonoUs, CLOCK_MONOTONIC µs,
 * the clock of the profile's timestamps).
 *
 *   node --import tsx bench/profile.ts <file.cpuprofile> [--results <results.json>] [--top 25] [--json]
 */
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import { parseArgs } from 'node:util'
import type { BenchResults } from './report.js'

interface CallFrame { functionName: string, url: string, lineNumber: number, columnNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

const NATIVE_WRITES = new Set(['writev', 'writeBuffer', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString', 'writeUcs2String'])

/** The category of a leaf (self-time) frame. */
function category (f: CallFrame): string {
  const { functionName: name, url } = f
  if (name === '(idle)') return 'idle (event loop waiting)'
  if (name === '(garbage collector)') return 'GC'
  if (name === '(program)') return '(program): native code outside JS'
  if (url === '' && NATIVE_WRITES.has(name)) return 'native socket write (libuv write/writev syscall, kernel TCP)'
  if (url === '' && (name === 'onStreamRead' || name === 'readStart' || name === 'readStop')) return 'native socket read'
  if (url.includes('/ws/lib/sender.js')) return 'ws Sender (frame header, cork/uncork, sendFrame)'
  if (url.includes('/ws/lib/websocket.js')) return 'ws WebSocket (send, readyState)'
  if (url.includes('/ws/lib/receiver.js') || url.includes('/ws/lib/buffer-util.js') || url.includes('/ws/lib/validation.js')) return 'ws Receiver (incoming frames)'
  if (url.includes('/ws/lib/')) return 'ws other'
  if (url.startsWith('node:internal/streams') || url === 'node:net' || url.startsWith('node:internal/stream_base_commons') ||
    url.startsWith('node:internal/net')) return 'node stream/net JS (Writable.write, writeGeneric, cork)'
  if (url.startsWith('node:') || url === '') return 'other node internals / natives'
  if (url.includes('/lib/channels.ts')) return 'fastify-realtime lib/channels.ts'
  if (url.includes('/lib/topic.ts')) return 'fastify-realtime lib/topic.ts'
  if (url.includes('/lib/connection.ts')) return 'fastify-realtime lib/connection.ts'
  if (url.includes('/lib/frame.ts')) return 'fastify-realtime lib/frame.ts'
  if (url.includes('/lib/') && !url.includes('node_modules')) return 'fastify-realtime lib/ (other)'
  if (url.includes('node_modules/')) return `dependency: ${url.replace(/.*node_modules\/((?:@[^/]+\/)?[^/]+).*/, '$1')}`
  return 'other'
}

function key (f: CallFrame): string {
  // tsx emits each module on one line: the column then tells functions apart.
  const pos = f.lineNumber === 0 && f.columnNumber > 0 ? `col ${f.columnNumber}` : String(f.lineNumber + 1)
  const where = f.url === '' ? '(native)' : `${f.url.replace(/^file:\/\/.*?\/(node_modules|lib|bench)\//, '$1/')}:${pos}`
  return `${f.functionName || '(anonymous)'} ${where}`
}

export interface ProfileSummary {
  file: string
  windowMs: number
  samples: number
  busySamples: number
  top: Array<{ fn: string, selfPct: number, selfBusyPct: number }>
  categories: Array<{ category: string, pct: number, busyPct: number }>
  /** The fan-out path: the per-topic fan-out of lib/topic.ts and the deferred flush of lib/frame.ts. */
  fanOut: { inclusiveBusyPct: number, breakdown: Array<{ category: string, busyPct: number }> }
  handler: { inclusiveBusyPct: number }
  flush: { inclusiveBusyPct: number }
  deliver: { inclusiveBusyPct: number }
  onMessage: { inclusiveBusyPct: number }
}

export function summarizeProfile (file: string, window?: [number, number], topN = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of profile.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  // The per-topic fan-out: Topic.emit (lib/topic.ts), called by the topic's handler or its stream follower.
  const isFanOut = (f: CallFrame): boolean => f.url.includes('/lib/topic.ts') && f.functionName === 'emit'
  // Deferred writes (lib/frame.ts, when present): frames corked during the tick are flushed from setImmediate,
  // outside the handler's stack; they are part of the fan-out path too.
  const isFlush = (f: CallFrame): boolean => f.url.includes('/lib/frame.ts') && f.functionName === 'flush'
  const isDeliver = (f: CallFrame): boolean => f.url.includes('/lib/connection.ts') && f.functionName.endsWith('deliver')
  const isOnMessage = (f: CallFrame): boolean => f.url.includes('/lib/connection.ts') && f.functionName.includes('onMessage')

  const self = new Map<string, number>()
  const cats = new Map<string, number>()
  const fanOutCats = new Map<string, number>()
  let fanOut = 0
  let handler = 0
  let flush = 0
  let deliver = 0
  let onMessage = 0
  let samples = 0
  let idle = 0
  let t = profile.startTime
  let first = Infinity
  let last = -Infinity
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0
    if (window !== undefined && (t < window[0] || t > window[1])) continue
    first = Math.min(first, t)
    last = Math.max(last, t)
    const node = byId.get(profile.samples[i]!)!
    samples++
    const leaf = node.callFrame
    const c = category(leaf)
    if (leaf.functionName === '(idle)') idle++
    self.set(key(leaf), (self.get(key(leaf)) ?? 0) + 1)
    cats.set(c, (cats.get(c) ?? 0) + 1)
    let inHandler = false
    let inFlush = false
    let inDeliver = false
    let inOnMessage = false
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame
      if (isFanOut(f)) inHandler = true
      if (isFlush(f)) inFlush = true
      if (isDeliver(f)) inDeliver = true
      if (isOnMessage(f)) inOnMessage = true
    }
    if (inHandler) handler++
    if (inFlush) flush++
    if (inHandler || inFlush) {
      fanOut++
      fanOutCats.set(c, (fanOutCats.get(c) ?? 0) + 1)
    }
    if (inDeliver) deliver++
    if (inOnMessage) onMessage++
  }
  const busy = samples - idle
  const pct = (n: number, of: number): number => (of > 0 ? (n / of) * 100 : 0)
  return {
    file: basename(file),
    windowMs: Number.isFinite(first) ? (last - first) / 1000 : 0,
    samples,
    busySamples: busy,
    top: [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, topN)
      .map(([fn, n]) => ({ fn, selfPct: pct(n, samples), selfBusyPct: fn.startsWith('(idle)') ? NaN : pct(n, busy) })),
    categories: [...cats.entries()].sort((a, b) => b[1] - a[1])
      .map(([category, n]) => ({ category, pct: pct(n, samples), busyPct: category.startsWith('idle') ? NaN : pct(n, busy) })),
    fanOut: {
      inclusiveBusyPct: pct(fanOut, busy),
      breakdown: [...fanOutCats.entries()].sort((a, b) => b[1] - a[1]).map(([category, n]) => ({ category, busyPct: pct(n, busy) }))
    },
    handler: { inclusiveBusyPct: pct(handler, busy) },
    flush: { inclusiveBusyPct: pct(flush, busy) },
    deliver: { inclusiveBusyPct: pct(deliver, busy) },
    onMessage: { inclusiveBusyPct: pct(onMessage, busy) }
  }
}

function windowFor (results: BenchResults, file: string): [number, number] | undefined {
  // Profile names are <scenario>-<target>-rep<n>-node<k>.cpuprofile (see bench/run.ts).
  const m = /^(s\d)-(.+)-rep(\d+)-node\d+\.cpuprofile$/.exec(basename(file))
  if (m === null) return undefined
  const run = results.runs.find((r) => r.scenario === m[1] && r.target === m[2] && r.rep === Number(m[3]))
  const w = run?.result?.windowMonoUs
  return w !== undefined && w[1] > w[0] ? w : undefined
}

function print (s: ProfileSummary): void {
  const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(1).padStart(5) : '    –')
  const lines: string[] = []
  lines.push(`${s.file}: ${s.samples} samples over ${(s.windowMs / 1000).toFixed(1)} s, ${s.busySamples} not idle ` +
    `(${(s.busySamples / Math.max(1, s.samples) * 100).toFixed(1)} %). Percentages: of all samples / of non-idle samples.`)
  lines.push('')
  lines.push('Top self time:')
  for (const t of s.top) lines.push(`  ${f(t.selfPct)} % ${f(t.selfBusyPct)} %  ${t.fn}`)
  lines.push('')
  lines.push('By category (self time):')
  for (const c of s.categories) lines.push(`  ${f(c.pct)} % ${f(c.busyPct)} %  ${c.category}`)
  lines.push('')
  lines.push(`Inclusive, of non-idle: fan-out path ${s.fanOut.inclusiveBusyPct.toFixed(1)} % = Topic.emit (lib/topic.ts) ` +
    `${s.handler.inclusiveBusyPct.toFixed(1)} % + deferred flush (lib/frame.ts) ${s.flush.inclusiveBusyPct.toFixed(1)} %; ` +
    `Connection.deliver ${s.deliver.inclusiveBusyPct.toFixed(1)} %, Connection#onMessage ${s.onMessage.inclusiveBusyPct.toFixed(1)} %`)
  lines.push('Inside the fan-out path, by category (of non-idle):')
  for (const c of s.fanOut.breakdown) lines.push(`  ${f(c.busyPct)} %  ${c.category}`)
  process.stdout.write(lines.join('\n') + '\n')
}

if (process.argv[1] !== undefined && basename(process.argv[1]).startsWith('profile.')) {
  const { values, positionals } = parseArgs({
    options: { results: { type: 'string' }, top: { type: 'string', default: '25' }, json: { type: 'boolean', default: false } },
    allowPositionals: true
  })
  if (positionals.length === 0) {
    process.stderr.write('usage: node --import tsx bench/profile.ts <file.cpuprofile>... [--results results.json] [--top N] [--json]\n')
    process.exit(2)
  }
  const results = values.results === undefined ? undefined : JSON.parse(readFileSync(values.results, 'utf8')) as BenchResults
  for (const file of positionals) {
    const window = results === undefined ? undefined : windowFor(results, file)
    if (results !== undefined && window === undefined) process.stderr.write(`profile: no window for ${file} in the results; counting every sample\n`)
    const summary = summarizeProfile(file, window, Number(values.top))
    if (values.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n')
    else print(summary)
  }
}
