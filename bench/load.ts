/**
 * The load generator: one process, `ws` clients, the same code for every target. It speaks either the
 * fastify-realtime JSON protocol (also spoken by the ws-raw targets) or the Engine.IO v4 / Socket.IO v5 text
 * protocol directly (`0{...}` open, `40` connect, `42[...]` events, `43` acks, ping `2` -> pong `3`).
 *
 * It runs one scenario against servers started by the harness (bench/run.ts), samples their CPU time and RSS
 * from /proc at the edges of the measured window, and prints one JSON line (a LoadResult) on stdout. Progress
 * and errors go to stderr. Exit code 0 when the scenario ran to the end without protocol errors, 1 otherwise.
 *
 *   node --import tsx bench/load.ts --scenario s1 --protocol realtime --urls ws://127.0.0.1:3000 --server-pids 123
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import type { StormFigures } from './storm.js'
import {
  ACTION, CHANNEL, type CpuTime, cpuDelta, emptyLoadResult, openFilesLimit, padFor, quantile, readCpu, readMachineCpu, readRssKiB, sleep
} from './common.js'

export type Scenario = 's1' | 's2' | 's3' | 's4' | 's5' | 's6' | 's7'
export type Protocol = 'realtime' | 'socketio'

export interface ProcCpu { pid: number, user: number, system: number }
export interface LatencySummary { samples: number, p50: number, p99: number, max: number }
export interface LoadResult {
  scenario: Scenario
  protocol: Protocol
  members: number
  /** Length of the measured window in seconds (S1-S3), or of the delivery phase (S5). */
  seconds: number
  /** Deliveries received in the measured window. */
  deliveries: number
  deliveriesPerSec: number
  published: number
  acks: number
  /** Latency publish -> receive in ms, over deliveries received in the window. */
  latency: LatencySummary
  /** CPU seconds of each server process over the window (S4: over the connection phase). */
  serverCpu: ProcCpu[]
  /** CPU seconds of auxiliary processes (redis-server) over the window. */
  auxCpu: ProcCpu[]
  /** CPU seconds of this load generator over the window. */
  clientCpu: CpuTime
  /**
   * CPU seconds used over the window by every other process of the machine (busy time from /proc/stat minus
   * servers, aux and this process): a background job competing for the cores shows up here.
   */
  otherCpuS: number
  connect: { count: number, seconds: number, perSec: number }
  /** S4: server VmRSS (KiB) before and after the measured connections, after a forced GC. */
  rss?: { beforeKiB: number, afterKiB: number, perConnectionKiB: number, warmConnections: number }
  /** S4: the server's V8 heapUsed + external (KiB) after the same GCs, when it reported them (--mem-file). */
  heap?: { beforeKiB: number, afterKiB: number, perConnectionKiB: number }
  /** S5: time from publish to the last delivery of each message, in ms. */
  fanoutMs?: number[]
  /** S5: per message, time to the median delivery, in ms. */
  fanoutP50Ms?: number[]
  /**
   * The measured window in CLOCK_MONOTONIC microseconds (process.hrtime), the clock of V8 CPU profiles'
   * timestamps: bench/profile.ts keeps only the samples of the window.
   */
  windowMonoUs: [number, number]
  /** Deliveries never received after the drain (expected - received). */
  missing: number
  /** Bytes read by the clients' TCP sockets in the window (S1-S3, S5, S7): the server's frames as sent on the wire. */
  wireBytes?: number
  /** S6 (bench/storm.ts): the reconnect storm's figures. */
  storm?: StormFigures
  errors: string[]
}

const { values: args } = parseArgs({
  options: {
    scenario: { type: 'string', default: 's1' },
    protocol: { type: 'string', default: 'realtime' },
    urls: { type: 'string', default: '' },
    'server-pids': { type: 'string', default: '' },
    'aux-pids': { type: 'string', default: '' },
    members: { type: 'string', default: '1000' },
    channels: { type: 'string', default: '100' },
    'warm-connections': { type: 'string', default: '100' },
    window: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '2' },
    duration: { type: 'string', default: '8' },
    rate: { type: 'string', default: '50' },
    payload: { type: 'string', default: '100' },
    concurrency: { type: 'string', default: '100' },
    messages: { type: 'string', default: '5' },
    'connect-timeout': { type: 'string', default: '120' },
    'mem-file': { type: 'string', default: '' },
    'local-addresses': { type: 'string', default: '' },
    deflate: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false }
  },
  strict: true
})

function int (name: keyof typeof args, min: number): number {
  const v = Number(args[name])
  if (!Number.isFinite(v) || v < min) fatal(`--${name} must be a number >= ${min}, got ${String(args[name])}`)
  return v
}

function fatal (message: string): never {
  process.stderr.write(`load: ${message}\n`)
  process.exit(1)
}

const scenario = args.scenario as Scenario
if (!['s1', 's2', 's3', 's4', 's5', 's7'].includes(scenario)) fatal(`unknown --scenario ${scenario}`)
const protocol = args.protocol as Protocol
if (protocol !== 'realtime' && protocol !== 'socketio') fatal(`unknown --protocol ${protocol}`)
const urls = args.urls.split(',').filter(Boolean)
if (urls.length === 0) fatal('--urls is required')
const serverPids = args['server-pids'].split(',').filter(Boolean).map(Number)
const auxPids = args['aux-pids'].split(',').filter(Boolean).map(Number)
const members = int('members', 1)
const channelCount = int('channels', 1)
const warmConnections = int('warm-connections', 0)
const windowSize = int('window', 1)
const warmupS = int('warmup', 0)
const durationS = int('duration', 0.1)
const rate = int('rate', 0.1)
const pad = padFor(int('payload', 10))
const concurrency = int('concurrency', 1)
const messages = int('messages', 1)
const connectTimeoutS = int('connect-timeout', 1)
/** Source addresses of the connections, round robin (S7: 127.0.0.2-5, clear of one address's ephemeral ports). */
const localAddresses = args['local-addresses'].split(',').filter(Boolean)
const log = (msg: string): void => { if (!args.quiet) process.stderr.write(`load[${scenario}]: ${msg}\n`) }

// Orphan guard: the harness may die; we must not keep sockets open forever.
const parentPid = process.ppid
setInterval(() => { if (process.ppid !== parentPid) process.exit(3) }, 1000).unref()

const needFds = members + warmConnections + 64
if (openFilesLimit() < needFds) {
  fatal(`open files limit ${openFilesLimit()} < ${needFds}: raise it (ulimit -n) before running`)
}

// ---------------------------------------------------------------------------------------------------------
// State shared by every connection. The hot path (one call per delivery) only touches these.

const errors: string[] = []
function error (message: string): void {
  if (errors.length < 20) errors.push(message)
  else if (errors.length === 20) errors.push('... more errors')
}

let delivered = 0
let acks = 0
let measuring = false
let windowDelivered = 0
const MAX_SAMPLES = 4_000_000
const samples = new Float64Array(MAX_SAMPLES)
let sampleCount = 0
/** Called after each delivery (closed-loop publisher, completion waits). */
let onDelivery: () => void = () => {}
let expectedClose = false

const T_KEY = Buffer.from('"t":')
/** Reads the number after `"t":` without allocating a string. NaN when absent. */
function extractT (buf: Buffer): number {
  let i = buf.indexOf(T_KEY)
  if (i < 0) return NaN
  i += 4
  let int = 0
  let frac = 0
  let scale = 1
  let inFrac = false
  for (; i < buf.length; i++) {
    const c = buf[i]!
    if (c >= 48 && c <= 57) {
      if (inFrac) {
        frac = frac * 10 + (c - 48)
        scale *= 10
      } else {
        int = int * 10 + (c - 48)
      }
    } else if (c === 46 && !inFrac) {
      inFrac = true
    } else {
      break
    }
  }
  return int + frac / scale
}

function delivery (buf: Buffer): void {
  delivered++
  if (measuring) {
    windowDelivered++
    const t = extractT(buf)
    if (sampleCount < MAX_SAMPLES) samples[sampleCount++] = performance.now() - t
  }
  onDelivery()
}

// ---------------------------------------------------------------------------------------------------------
// Protocols

interface Proto {
  url: (base: string, deviceId: string) => string
  /** Handles one frame during setup; returns true when the connection is joined. */
  setup: (ws: WebSocket, buf: Buffer, channel: string) => boolean
  /** Handles one frame after setup (the hot path). */
  frame: (ws: WebSocket, buf: Buffer) => void
  publish: (ws: WebSocket, channel: string, payloadJson: string, id: number) => void
}

const C_LBRACE = 0x7b
const realtime: Proto = {
  url: (base, deviceId) => `${base}/ws?deviceId=${deviceId}`,
  setup (ws, buf, channel) {
    const kind = buf[9]
    if (kind === 0x77) { // welcome
      ws.send(`{"type":"join","channel":"${channel}","id":1}`)
      return false
    }
    if (kind === 0x6a) return true // joined
    if (kind === 0x6d) { // a delivery racing the setup of a late connection: count it
      delivery(buf)
      return false
    }
    error(`setup: unexpected frame ${buf.toString().slice(0, 200)}`)
    return false
  },
  frame (_ws, buf) {
    if (buf[0] !== C_LBRACE) {
      error(`not a JSON object: ${buf.toString().slice(0, 100)}`)
      return
    }
    const kind = buf[9]
    if (kind === 0x6d) delivery(buf) // message
    else if (kind === 0x61) acks++ // ack
    else error(`frame: ${buf.toString().slice(0, 200)}`)
  },
  publish (ws, channel, payloadJson, id) {
    ws.send(`{"type":"action","channel":"${channel}","action":"${ACTION}","payload":${payloadJson},"id":${id}}`)
  }
}

const C_0 = 0x30
const C_2 = 0x32
const C_3 = 0x33
const C_4 = 0x34
const socketio: Proto = {
  url: (base, deviceId) => `${base}/socket.io/?EIO=4&transport=websocket&deviceId=${deviceId}`,
  setup (ws, buf, channel) {
    const a = buf[0]
    const b = buf[1]
    if (a === C_0) { // Engine.IO open: connect to the main namespace
      ws.send('40')
      return false
    }
    if (a === C_2 && buf.length === 1) {
      ws.send('3')
      return false
    }
    if (a === C_4 && b === C_0) { // Socket.IO CONNECT ack: join with ack id 1
      ws.send(`421["join","${channel}"]`)
      return false
    }
    if (a === C_4 && b === C_3) return true // ack of join
    if (a === C_4 && b === C_2) {
      delivery(buf)
      return false
    }
    error(`setup: unexpected frame ${buf.toString().slice(0, 200)}`)
    return false
  },
  frame (ws, buf) {
    const a = buf[0]
    const b = buf[1]
    if (a === C_4 && b === C_2) delivery(buf) // EVENT
    else if (a === C_4 && b === C_3) { // ACK; an error object means the server refused
      acks++
      if (buf.includes('error')) error(`ack: ${buf.toString().slice(0, 200)}`)
    } else if (a === C_2 && buf.length === 1) ws.send('3') // ping -> pong
    else error(`frame: ${buf.toString().slice(0, 200)}`)
  },
  publish (ws, channel, payloadJson, id) {
    ws.send(`42${id}["${ACTION}","${channel}",${payloadJson}]`)
  }
}

const proto = protocol === 'realtime' ? realtime : socketio

// ---------------------------------------------------------------------------------------------------------
// Connections

const sockets: WebSocket[] = []

function open (index: number, node: number, channel: string, timeoutMs: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const localAddress = localAddresses.length === 0 ? undefined : localAddresses[index % localAddresses.length]
    const ws = new WebSocket(proto.url(urls[node]!, `d${index}`),
      { perMessageDeflate: args.deflate, skipUTF8Validation: true, ...(localAddress === undefined ? {} : { localAddress }) })
    let joined = false
    const timer = setTimeout(() => {
      ws.terminate()
      reject(new Error(`connection ${index} not joined after ${timeoutMs} ms`))
    }, timeoutMs)
    ws.on('message', (data) => {
      const buf = data as Buffer
      if (joined) {
        proto.frame(ws, buf)
        return
      }
      if (proto.setup(ws, buf, channel)) {
        joined = true
        clearTimeout(timer)
        resolve(ws)
      }
    })
    ws.on('error', (err) => {
      clearTimeout(timer)
      if (!joined) reject(err)
      else error(`socket ${index}: ${err.message}`)
    })
    ws.on('close', (code) => {
      clearTimeout(timer)
      if (!joined) reject(new Error(`connection ${index} closed (${code}) before joining`))
      else if (!expectedClose) error(`socket ${index} closed by the server (${code})`)
    })
    sockets[index] = ws
  })
}

/** Opens `count` connections from index `first`, at most `concurrency` handshakes at a time. */
async function openMany (first: number, count: number, placement: (i: number) => { node: number, channel: string }): Promise<number> {
  const started = performance.now()
  const deadline = started + connectTimeoutS * 1000
  let next = first
  const end = first + count
  let lastLog = started
  let done = 0
  async function worker (): Promise<void> {
    while (next < end) {
      const i = next++
      const { node, channel } = placement(i)
      const left = deadline - performance.now()
      if (left <= 0) throw new Error(`connecting ${count} connections took more than ${connectTimeoutS} s`)
      await open(i, node, channel, Math.min(left, 30_000))
      done++
      const now = performance.now()
      if (now - lastLog > 2000) {
        lastLog = now
        log(`${done}/${count} connections`)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  return (performance.now() - started) / 1000
}

// ---------------------------------------------------------------------------------------------------------
// Measurement helpers

interface Snapshot { at: number, mono: number, delivered: number, server: CpuTime[], aux: CpuTime[], client: CpuTime, machineBusy: number, wire: number }
/** Bytes the clients' TCP sockets have read (what the servers wrote to them, frames and headers). */
function wireBytes (): number {
  let n = 0
  for (const ws of sockets) n += (ws as unknown as { _socket?: { bytesRead: number } } | undefined)?._socket?.bytesRead ?? 0
  return n
}
function snapshot (): Snapshot {
  return {
    wire: wireBytes(),
    at: performance.now(),
    mono: Number(process.hrtime.bigint() / 1000n),
    delivered,
    server: serverPids.map(readCpu),
    aux: auxPids.map(readCpu),
    client: readCpu(process.pid),
    machineBusy: readMachineCpu().busy
  }
}
function otherCpu (a: Snapshot, b: Snapshot): number {
  const sum = (x: CpuTime[]): number => x.reduce((s, c) => s + c.user + c.system, 0)
  const ours = sum(b.server) - sum(a.server) + sum(b.aux) - sum(a.aux) +
    (b.client.user + b.client.system) - (a.client.user + a.client.system)
  return Math.max(0, b.machineBusy - a.machineBusy - ours)
}
function perProc (pids: number[], a: CpuTime[], b: CpuTime[]): ProcCpu[] {
  return pids.map((pid, i) => ({ pid, ...cpuDelta(a[i]!, b[i]!) }))
}

function latencySummary (): LatencySummary {
  const sorted = samples.subarray(0, sampleCount).sort()
  return {
    samples: sampleCount,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sampleCount === 0 ? NaN : sorted[sampleCount - 1]!
  }
}

/** Resolves when `delivered >= target`, or after `timeoutMs` (then returns false). */
async function waitDelivered (target: number, timeoutMs: number): Promise<boolean> {
  if (delivered >= target) return true
  return await new Promise<boolean>((resolve) => {
    const previous = onDelivery
    const timer = setTimeout(() => {
      onDelivery = previous
      resolve(false)
    }, timeoutMs)
    onDelivery = () => {
      previous()
      if (delivered >= target) {
        onDelivery = previous
        clearTimeout(timer)
        resolve(true)
      }
    }
  })
}

let publishId = 2
function publishOne (publisher: WebSocket): void {
  const t = Math.round(performance.now() * 1000) / 1000
  proto.publish(publisher, CHANNEL, `{"t":${t},"pad":"${pad}"}`, publishId++)
}

/** Forces a GC in the server (SIGUSR2, twice) and reads its VmRSS, and heapUsed + external when reported. */
async function gcAndMemory (): Promise<{ rssKiB: number, heapKiB: number }> {
  const pid = serverPids[0]!
  const memFile = args['mem-file']
  const started = Date.now()
  for (let i = 0; i < 2; i++) {
    process.kill(pid, 'SIGUSR2')
    await sleep(400)
  }
  let heapKiB = NaN
  if (memFile !== '') {
    try {
      const m = JSON.parse(readFileSync(memFile, 'utf8')) as { at: number, heapUsed: number, external: number }
      if (m.at >= started) heapKiB = (m.heapUsed + m.external) / 1024
    } catch {}
  }
  return { rssKiB: readRssKiB(pid), heapKiB }
}

function baseResult (): LoadResult {
  return emptyLoadResult(scenario, protocol, members, errors)
}

// ---------------------------------------------------------------------------------------------------------
// Scenarios

/** S1, S3 (closed loop with a window) and S2 (fixed rate): `members` in one channel, member 0 publishes. */
async function streamScenario (mode: 'window' | 'rate'): Promise<LoadResult> {
  const result = baseResult()
  const nodes = urls.length
  const connectS = await openMany(0, members, (i) => ({ node: i % nodes, channel: CHANNEL }))
  result.connect = { count: members, seconds: connectS, perSec: members / connectS }
  log(`${members} members joined in ${connectS.toFixed(2)} s over ${nodes} node(s)`)
  const publisher = sockets[0]!
  let published = 0
  let publishing = true
  let lastProgress = performance.now()
  let lastDelivered = 0

  let rateTimer: NodeJS.Timeout | undefined
  if (mode === 'window') {
    const limit = windowSize * members
    const pump = (): void => {
      if (!publishing) return
      while (published * members - delivered < limit) {
        publishOne(publisher)
        published++
      }
    }
    onDelivery = pump
    pump()
  } else {
    const started = performance.now()
    rateTimer = setInterval(() => {
      if (!publishing) return
      const due = Math.floor(((performance.now() - started) / 1000) * rate) + 1
      while (published < due) {
        publishOne(publisher)
        published++
      }
    }, 2)
  }
  const stall = setInterval(() => {
    if (delivered !== lastDelivered) {
      lastDelivered = delivered
      lastProgress = performance.now()
    } else if (publishing && performance.now() - lastProgress > 5000) {
      error(`stalled: no delivery for 5 s (published ${published}, delivered ${delivered})`)
      publishing = false
    }
  }, 500)

  try {
    await sleep(warmupS * 1000)
    const a = snapshot()
    windowDelivered = 0
    sampleCount = 0
    measuring = true
    await sleep(durationS * 1000)
    measuring = false
    const b = snapshot()
    publishing = false
    const seconds = (b.at - a.at) / 1000
    result.seconds = seconds
    result.deliveries = windowDelivered
    result.deliveriesPerSec = windowDelivered / seconds
    result.serverCpu = perProc(serverPids, a.server, b.server)
    result.auxCpu = perProc(auxPids, a.aux, b.aux)
    result.clientCpu = cpuDelta(a.client, b.client)
    result.otherCpuS = otherCpu(a, b)
    result.windowMonoUs = [a.mono, b.mono]
    result.wireBytes = b.wire - a.wire
    result.latency = latencySummary()
    // Drain: every published message must reach every member.
    const expected = published * members
    if (!(await waitDelivered(expected, 10_000))) error(`drain: ${expected - delivered} deliveries missing after 10 s`)
    result.missing = Math.max(0, expected - delivered)
    result.published = published
    await sleep(100)
    result.acks = acks
    if (acks < published) error(`${published - acks} acks missing`)
    log(`${result.deliveriesPerSec.toFixed(0)} deliveries/s, p50 ${result.latency.p50.toFixed(2)} ms, p99 ${result.latency.p99.toFixed(2)} ms`)
    return result
  } finally {
    clearInterval(stall)
    clearInterval(rateTimer)
    onDelivery = () => {}
  }
}

/** S4: idle joined connections spread over `channelCount` channels; RSS delta per connection. */
async function memoryScenario (): Promise<LoadResult> {
  const result = baseResult()
  const place = (i: number): { node: number, channel: string } => ({ node: 0, channel: `c${i % channelCount}` })
  if (warmConnections > 0) await openMany(0, warmConnections, place)
  const before = await gcAndMemory()
  const rssBefore = before.rssKiB
  const a = snapshot()
  const connectS = await openMany(warmConnections, members, place)
  const b = snapshot()
  await sleep(500)
  const after = await gcAndMemory()
  const rssAfter = after.rssKiB
  result.connect = { count: members, seconds: connectS, perSec: members / connectS }
  result.seconds = connectS
  result.serverCpu = perProc(serverPids, a.server, b.server)
  result.clientCpu = cpuDelta(a.client, b.client)
  result.otherCpuS = otherCpu(a, b)
  result.windowMonoUs = [a.mono, b.mono]
  result.rss = {
    beforeKiB: rssBefore,
    afterKiB: rssAfter,
    perConnectionKiB: (rssAfter - rssBefore) / members,
    warmConnections
  }
  if (Number.isFinite(before.heapKiB) && Number.isFinite(after.heapKiB)) {
    result.heap = { beforeKiB: before.heapKiB, afterKiB: after.heapKiB, perConnectionKiB: (after.heapKiB - before.heapKiB) / members }
  }
  log(`${members} connections in ${connectS.toFixed(2)} s (${result.connect.perSec.toFixed(0)}/s), ` +
    `RSS ${rssBefore} -> ${rssAfter} KiB: ${result.rss.perConnectionKiB.toFixed(2)} KiB/connection`)
  return result
}

/** S5: `members` connections in one channel, `messages` messages one at a time; time to the last delivery. */
async function scaleScenario (): Promise<LoadResult> {
  const result = baseResult()
  const connectS = await openMany(0, members, () => ({ node: 0, channel: CHANNEL }))
  result.connect = { count: members, seconds: connectS, perSec: members / connectS }
  log(`${members} members joined in ${connectS.toFixed(2)} s`)
  await sleep(500)
  const publisher = sockets[0]!
  const fanoutMs: number[] = []
  const fanoutP50Ms: number[] = []
  const a = snapshot()
  sampleCount = 0
  windowDelivered = 0
  measuring = true
  for (let k = 0; k < messages; k++) {
    const before = sampleCount
    const start = performance.now()
    publishOne(publisher)
    result.published++
    const target = (k + 1) * members
    if (!(await waitDelivered(target, 30_000))) {
      error(`message ${k}: ${target - delivered} of ${members} deliveries missing after 30 s`)
      break
    }
    fanoutMs.push(performance.now() - start)
    const mine = samples.slice(before, sampleCount).sort()
    fanoutP50Ms.push(quantile(mine, 0.5))
    await sleep(300)
  }
  measuring = false
  const b = snapshot()
  result.seconds = fanoutMs.reduce((s, v) => s + v, 0) / 1000
  result.deliveries = windowDelivered
  result.deliveriesPerSec = result.seconds > 0 ? windowDelivered / result.seconds : 0
  result.serverCpu = perProc(serverPids, a.server, b.server)
  result.clientCpu = cpuDelta(a.client, b.client)
  result.otherCpuS = otherCpu(a, b)
  result.windowMonoUs = [a.mono, b.mono]
  result.latency = latencySummary()
  result.fanoutMs = fanoutMs
  result.fanoutP50Ms = fanoutP50Ms
  result.missing = Math.max(0, result.published * members - delivered)
  await sleep(100)
  result.acks = acks
  log(`fan-out to ${members}: ${fanoutMs.map((v) => v.toFixed(1)).join(', ')} ms`)
  return result
}

/**
 * S7: `members` idle connections joined to one channel (sources spread over --local-addresses): memory per
 * connection (RSS and heap after forced GCs, before and after), then one broadcast to all of them: time from publish
 * to the last delivery; `serverCpu` is the broadcast's.
 */
async function bigScenario (): Promise<LoadResult> {
  const result = baseResult()
  const before = await gcAndMemory()
  const connectS = await openMany(0, members, () => ({ node: 0, channel: CHANNEL }))
  result.connect = { count: members, seconds: connectS, perSec: members / connectS }
  log(`${members} members joined in ${connectS.toFixed(2)} s`)
  await sleep(500)
  const after = await gcAndMemory()
  result.rss = { beforeKiB: before.rssKiB, afterKiB: after.rssKiB, perConnectionKiB: (after.rssKiB - before.rssKiB) / members, warmConnections: 0 }
  if (Number.isFinite(before.heapKiB) && Number.isFinite(after.heapKiB)) {
    result.heap = { beforeKiB: before.heapKiB, afterKiB: after.heapKiB, perConnectionKiB: (after.heapKiB - before.heapKiB) / members }
  }
  const a = snapshot()
  sampleCount = 0
  windowDelivered = 0
  measuring = true
  const start = performance.now()
  publishOne(sockets[0]!)
  result.published = 1
  if (!(await waitDelivered(members, 120_000))) error(`${members - delivered} of ${members} deliveries missing after 120 s`)
  const fanoutMs = performance.now() - start
  measuring = false
  const b = snapshot()
  result.seconds = fanoutMs / 1000
  result.deliveries = windowDelivered
  result.deliveriesPerSec = windowDelivered / result.seconds
  result.serverCpu = perProc(serverPids, a.server, b.server)
  result.clientCpu = cpuDelta(a.client, b.client)
  result.otherCpuS = otherCpu(a, b)
  result.windowMonoUs = [a.mono, b.mono]
  result.latency = latencySummary()
  result.fanoutMs = [fanoutMs]
  result.fanoutP50Ms = [result.latency.p50]
  result.missing = Math.max(0, members - delivered)
  log(`${result.rss.perConnectionKiB.toFixed(2)} KiB/connection; broadcast to ${members} in ${fanoutMs.toFixed(1)} ms`)
  return result
}

async function main (): Promise<void> {
  let result: LoadResult
  if (scenario === 's1' || scenario === 's3') result = await streamScenario('window')
  else if (scenario === 's2') result = await streamScenario('rate')
  else if (scenario === 's4') result = await memoryScenario()
  else if (scenario === 's7') result = await bigScenario()
  else result = await scaleScenario()
  if (scenario !== 's4' && result.deliveries === 0) error('no delivery in the measured window')
  expectedClose = true
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(errors.length === 0 ? 0 : 1))
}

main().catch((err: unknown) => {
  error(`fatal: ${(err as Error)?.stack ?? String(err)}`)
  expectedClose = true
  process.stdout.write(JSON.stringify({ ...baseResult(), errors }) + '\n', () => process.exit(1))
})
