/**
 * The load generator of S6, the reconnect storm: `connections` members joined to one channel on one node, and a
 * publisher sending `--rate` messages/s through it. Once every member is joined it prints a `storm` line on stdout:
 * the harness (bench/run.ts) then restarts the server process on the same port and samples its CPU and RSS. Every
 * member reconnects on its own and re-joins:
 * - `--policy sdk`: the delays of the client SDK (lib/client/backoff.ts `backoffDelay`, attempt counted from 1 and
 *   reset by a welcome, its default minDelay/maxDelay and connect timeout), as `RealtimeClient` does;
 * - `--policy socketio`: socket.io-client's defaults (reconnectionDelay 1000, reconnectionDelayMax 5000,
 *   randomizationFactor 0.5, the attempt counter reset on connect).
 * With `--history` (a target with history on the channel, e.g. on Redis so that it survives the restart), every
 * member keeps its stream position (the joined frame's epoch and offset, then each delivery's offset) and re-joins
 * with `since`: the figures then say how many re-joins were recovered and whether any of those missed a message.
 * It prints one JSON line (a LoadResult with `storm`) at the end. Sources are spread over `--local-addresses` when given.
 *
 *   node --import tsx bench/storm.ts --protocol realtime --url ws://127.0.0.1:3000 --connections 10000
 */
import { parseArgs } from 'node:util'
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { backoffDelay } from '../lib/client/backoff.js'
import { DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_DELAY, DEFAULT_MIN_DELAY } from '../lib/client/options.js'
import { ACTION, CHANNEL, cpuDelta, emptyLoadResult, readCpu, sleep } from './common.js'
import type { LoadResult } from './load.js'

/** The figures of one storm (in `LoadResult.storm`). */
export interface StormFigures {
  policy: string
  /** From the first close seen to 99 % / 100 % of the members joined again, in ms (NaN when never reached). */
  rejoin99Ms: number
  rejoin100Ms: number
  /** The same moments in wall-clock ms (Date.now()), for the harness to count from the restarted server's `ready`. */
  rejoin99At: number
  rejoin100At: number
  rejoined: number
  /** Failed attempts during the storm: TCP refused (server down), by HTTP status, timed out, other errors. */
  refusedTcp: number
  refusedHttp: Record<string, number>
  timedOut: number
  otherErrors: number
  /** Connection attempts, the initial ones included. */
  attempts: number
  acked: number
  /** Acknowledged messages a joined member never received while it stayed connected (member-messages). */
  lost: number
  /** Acknowledged messages published while a member was away (what history recovery gives back), member-messages. */
  missedWhileAway: number
  /** With `--history`: members whose re-join after the storm answered `recovered: true` / `false`. */
  recovered?: number
  notRecovered?: number
  /** With `--history`: of `missedWhileAway`, the member-messages of members whose re-join said recovered (must be 0). */
  missedRecovered?: number
  /**
   * Filled in by the harness: SIGTERM to the new process listening (`downtimeMs`), of which the old process's exit
   * (`stopMs`); then from /proc, the restarted server from its start to the end of the storm, and the SYNs the
   * kernel dropped meanwhile because a listen queue was full (machine-wide TcpExt ListenOverflows).
   */
  server?: { downtimeMs: number, stopMs: number, readyAt: number, cpuSeconds: number, peakCores: number, peakRssKiB: number, listenOverflows: number }
}

const { values: args } = parseArgs({
  options: {
    protocol: { type: 'string', default: 'realtime' },
    policy: { type: 'string', default: 'sdk' },
    url: { type: 'string', default: '' },
    connections: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '100' },
    rate: { type: 'string', default: '10' },
    timeout: { type: 'string', default: '180' },
    settle: { type: 'string', default: '2' },
    'local-addresses': { type: 'string', default: '' },
    history: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false }
  },
  strict: true
})
const protocol = args.protocol
const policy = args.policy
const members = Number(args.connections)
const concurrency = Number(args.concurrency)
const rate = Number(args.rate)
const timeoutMs = Number(args.timeout) * 1000
/** Seconds of publishing before the storm and after the last re-join, and of the drain. */
const settleMs = Number(args.settle) * 1000
const localAddresses = args['local-addresses'].split(',').filter(Boolean)
const history = args.history === true
const log = (msg: string): void => { if (!args.quiet) process.stderr.write(`storm: ${msg}\n`) }
if (protocol !== 'realtime' && protocol !== 'socketio') throw new Error(`unknown --protocol ${protocol}`)
if (policy !== 'sdk' && policy !== 'socketio') throw new Error(`unknown --policy ${policy}`)
const parentPid = process.ppid
setInterval(() => { if (process.ppid !== parentPid) process.exit(3) }, 1000).unref()

const errors: string[] = []
const error = (m: string): void => { if (errors.length < 20) errors.push(m) }

/** socket.io-client's Backoff with its defaults: 1000 * 2^attempt, +/- up to 50 %, at most 5000 ms. */
function socketioDelay (attempt: number): number {
  const ms = 1000 * 2 ** attempt
  const rand = Math.random()
  const deviation = Math.floor(rand * 0.5 * ms)
  return Math.min((Math.floor(rand * 10) & 1) === 0 ? ms - deviation : ms + deviation, 5000) | 0
}

// Messages: seq n (1..) is `{"t":n,...}`; acked[n] once the server acknowledged it; got[member * cap + n] on receipt.
const cap = Math.ceil(rate * (timeoutMs / 1000 + 60)) + 16
const acked = new Uint8Array(cap)
const got = new Uint8Array((members + 1) * cap)
let nextSeq = 1
let lastAcked = 0
let stormAt = 0
let ackedAtStorm = 0
let joinedNow = 0
let rejoined = 0
let recoveredCount = 0
let notRecoveredCount = 0
const counts = { refusedTcp: 0, timedOut: 0, otherErrors: 0, attempts: 0 }
const refusedHttp: Record<string, number> = {}
let onProgress: () => void = () => {}

const T_KEY = Buffer.from('"t":')
const OFFSET_KEY = Buffer.from('"offset":')

/** The decimal integer starting at `i` in `buf` (0 when none). */
function integerAt (buf: Buffer, i: number): number {
  let n = 0
  for (; i < buf.length; i++) {
    const c = buf[i]!
    if (c < 48 || c > 57) break
    n = n * 10 + c - 48
  }
  return n
}

/** The stream offset of a delivery (its last field), 0 when it has none. */
function offsetOf (buf: Buffer): number {
  const i = buf.lastIndexOf(OFFSET_KEY)
  return i < 0 ? 0 : integerAt(buf, i + OFFSET_KEY.length)
}

/** The message's sequence number (`"t":n` of its payload), 0 when it has none. */
function seqOf (buf: Buffer): number {
  const i = buf.indexOf(T_KEY)
  return i < 0 ? 0 : integerAt(buf, i + T_KEY.length)
}

/** One member (index < members) or the publisher (index === members); reconnects forever until `stop`. */
class Member {
  ws: WebSocket | undefined
  joined = false
  attempt = 0
  /** [from, to] seq ranges during which this member was joined (to = 0 while open). */
  epochs: number[] = []
  everJoined = false
  rejoinedAfterStorm = false
  /** With --history: the stream position (epoch of the joined frame, last offset seen), and the storm re-join's answer. */
  epoch: string | undefined
  offset = 0
  recovered = false
  timer: NodeJS.Timeout | undefined
  /** Resolves the initial connect's wait. */
  onJoin: (() => void) | undefined
  constructor (readonly index: number) {}

  connect (): void {
    counts.attempts++
    const base = args.url
    const url = protocol === 'realtime' ? `${base}/ws?deviceId=d${this.index}` : `${base}/socket.io/?EIO=4&transport=websocket&deviceId=d${this.index}`
    const localAddress = localAddresses.length === 0 ? undefined : localAddresses[this.index % localAddresses.length]
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true, ...(localAddress === undefined ? {} : { localAddress }) })
    this.ws = ws
    let welcomed = false
    this.timer = setTimeout(() => { counts.timedOut++; ws.terminate() }, DEFAULT_CONNECT_TIMEOUT)
    ws.on('message', (data) => this.frame(ws, data as Buffer, () => { welcomed = true }))
    ws.on('unexpected-response', (_req, res) => {
      refusedHttp[res.statusCode ?? 0] = (refusedHttp[res.statusCode ?? 0] ?? 0) + 1
      res.resume()
      ws.terminate()
    })
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ECONNREFUSED') counts.refusedTcp++
      else if (!/Unexpected server response/.test(err.message)) counts.otherErrors++
    })
    ws.on('close', () => {
      clearTimeout(this.timer)
      if (this.joined) {
        this.joined = false
        joinedNow--
        if (stormAt === 0) {
          stormAt = performance.now()
          ackedAtStorm = lastAcked
        }
        // The joined range ends with the last message acknowledged before the storm (the server went away), or
        // for a later close, the last acknowledged at that moment.
        this.epochs.push(this.rejoinedAfterStorm ? lastAcked : ackedAtStorm)
      }
      if (stopped) return
      if (policy === 'sdk') {
        if (welcomed) this.attempt = 0
        this.attempt++
        this.timer = setTimeout(() => this.connect(), backoffDelay(this.attempt, DEFAULT_MIN_DELAY, DEFAULT_MAX_DELAY))
      } else {
        this.timer = setTimeout(() => this.connect(), socketioDelay(this.attempt++))
      }
    })
  }

  frame (ws: WebSocket, buf: Buffer, welcomed: () => void): void {
    if (protocol === 'realtime') {
      const kind = buf[9]
      if (kind === 0x6d) this.delivery(buf) // message
      else if (kind === 0x77) this.welcome(ws, welcomed, this.joinFrame())
      else if (kind === 0x6a) this.onJoined(buf) // joined
      else if (kind === 0x72) this.onReset(buf) // reset: the stream was lost meanwhile
      else if (kind === 0x61) ack(Number(JSON.parse(buf.toString()).id)) // ack
      else error(`frame: ${buf.toString().slice(0, 200)}`)
      return
    }
    const a = buf[0]
    const b = buf[1]
    if (a === 0x34 && b === 0x31) return // DISCONNECT from the namespace at shutdown: the close follows
    if (a === 0x34 && b === 0x32) this.delivery(buf)
    else if (a === 0x32 && buf.length === 1) ws.send('3')
    else if (a === 0x30) ws.send('40')
    else if (a === 0x34 && b === 0x30) this.welcome(ws, welcomed, `420["join","${CHANNEL}"]`)
    else if (a === 0x34 && b === 0x33) {
      const id = Number(/^43(\d+)/.exec(buf.toString())![1])
      if (id === 0) this.onJoined()
      else ack(id)
    } else error(`frame: ${buf.toString().slice(0, 200)}`)
  }

  /** The server's welcome (Socket.IO: the CONNECT ack): the attempt counter resets; join. */
  welcome (ws: WebSocket, welcomed: () => void, join: string): void {
    welcomed()
    this.attempt = 0
    ws.send(join)
  }

  /** The join frame: with --history and a known position, `since` it. */
  joinFrame (): string {
    return history && this.epoch !== undefined
      ? `{"type":"join","channel":"${CHANNEL}","id":"j","since":{"offset":${this.offset},"epoch":${JSON.stringify(this.epoch)}}}`
      : `{"type":"join","channel":"${CHANNEL}","id":"j"}`
  }

  onReset (buf: Buffer): void {
    const frame = JSON.parse(buf.toString()) as { epoch: string, offset: number }
    this.epoch = frame.epoch
    this.offset = frame.offset
  }

  onJoined (buf?: Buffer): void {
    clearTimeout(this.timer)
    if (history && buf !== undefined) {
      const frame = JSON.parse(buf.toString()) as { epoch?: string, offset?: number, recovered?: boolean }
      // Recovered: the missed messages follow, each with its offset. Not recovered (or a first join): start over at
      // the position the server gave.
      if (frame.recovered !== true) {
        this.epoch = frame.epoch
        this.offset = frame.offset ?? 0
      }
      if (stormAt !== 0 && this.everJoined && !this.rejoinedAfterStorm && this.index < members) {
        if (frame.recovered === true) {
          this.recovered = true
          recoveredCount++
        } else notRecoveredCount++
      }
    }
    this.joined = true
    joinedNow++
    this.epochs.push(nextSeq)
    if (stormAt !== 0 && this.everJoined && !this.rejoinedAfterStorm && this.index < members) {
      this.rejoinedAfterStorm = true
      rejoined++
    }
    this.everJoined = true
    this.onJoin?.()
    onProgress()
  }

  delivery (buf: Buffer): void {
    if (history) {
      const offset = offsetOf(buf)
      if (offset > this.offset) this.offset = offset
    }
    const seq = seqOf(buf)
    if (seq > 0 && seq < cap) got[this.index * cap + seq] = 1
  }
}

function ack (id: number): void {
  if (id > 0 && id < cap) acked[id] = 1
  if (id > lastAcked) lastAcked = id
}

let stopped = false
const all = Array.from({ length: members + 1 }, (_, i) => new Member(i))
const publisher = all[members]!
function publish (): void {
  const ws = publisher.ws
  if (!publisher.joined || ws === undefined || nextSeq >= cap) return
  const seq = nextSeq++
  const payload = `{"t":${seq},"pad":""}`
  ws.send(protocol === 'realtime'
    ? `{"type":"action","channel":"${CHANNEL}","action":"${ACTION}","payload":${payload},"id":${seq}}`
    : `42${seq}["${ACTION}","${CHANNEL}",${payload}]`)
}

async function until (test: () => boolean, ms: number): Promise<boolean> {
  if (test()) return true
  return await new Promise((resolve) => {
    const timer = setTimeout(() => { onProgress = () => {}; resolve(false) }, ms)
    onProgress = () => {
      if (!test()) return
      onProgress = () => {}
      clearTimeout(timer)
      resolve(true)
    }
  })
}

async function main (): Promise<LoadResult> {
  const started = performance.now()
  // The initial connections, `concurrency` handshakes at a time.
  let next = 0
  let ready = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, members + 1) }, async () => {
    while (next <= members) {
      const m = all[next++]!
      const joined = new Promise<void>((resolve) => { m.onJoin = resolve })
      m.connect()
      await Promise.race([joined, sleep(DEFAULT_CONNECT_TIMEOUT * 3)])
      m.onJoin = undefined
      if (++ready % 2000 === 0) log(`${ready} joined`)
    }
  }))
  const connectS = (performance.now() - started) / 1000
  if (joinedNow < members + 1) error(`only ${joinedNow} of ${members + 1} joined before the storm`)
  log(`${joinedNow} joined in ${connectS.toFixed(1)} s`)
  const pump = setInterval(publish, 1000 / rate)
  await sleep(settleMs)
  const cpuBefore = readCpu(process.pid)
  process.stdout.write('storm\n')
  // The harness restarts the server: wait for the first close, then for every member to re-join.
  await until(() => stormAt !== 0, 60_000)
  let rejoin99Ms = NaN
  let rejoin99At = NaN
  const target99 = Math.ceil(members * 0.99)
  if (await until(() => rejoined >= target99, timeoutMs)) {
    rejoin99Ms = performance.now() - stormAt
    rejoin99At = Date.now()
  }
  let rejoin100Ms = NaN
  let rejoin100At = NaN
  if (await until(() => rejoined >= members, Math.max(1000, timeoutMs - (performance.now() - stormAt)))) {
    rejoin100Ms = performance.now() - stormAt
    rejoin100At = Date.now()
  }
  const clientCpu = cpuDelta(cpuBefore, readCpu(process.pid))
  log(`99 % re-joined after ${rejoin99Ms.toFixed(0)} ms, 100 % after ${rejoin100Ms.toFixed(0)} ms (${rejoined}/${members})`)
  await sleep(settleMs)
  clearInterval(pump)
  // Drain: the last acknowledged message reaches every joined member.
  await sleep(Math.max(500, settleMs))
  const lastSeq = lastAcked
  stopped = true
  let lost = 0
  let missedWhileAway = 0
  let missedRecovered = 0
  for (let i = 0; i < members; i++) {
    const m = all[i]!
    const e = m.joined ? [...m.epochs, lastSeq] : m.epochs
    const base = i * cap
    for (let k = 0; k + 1 < e.length; k += 2) {
      for (let s = e[k]!; s <= e[k + 1]!; s++) if (acked[s] === 1 && got[base + s] === 0) lost++
      const resume = e[k + 2]
      if (resume === undefined) continue
      for (let s = e[k + 1]! + 1; s < resume; s++) {
        if (acked[s] !== 1 || got[base + s] === 1) continue
        missedWhileAway++
        if (m.recovered) missedRecovered++
      }
    }
  }
  for (const m of all) { clearTimeout(m.timer); m.ws?.terminate() }
  let ackCount = 0
  for (let s = 1; s < nextSeq; s++) ackCount += acked[s]!
  const connect = { count: members + 1, seconds: connectS, perSec: (members + 1) / connectS }
  const recovery = history ? { recovered: recoveredCount, notRecovered: notRecoveredCount, missedRecovered } : {}
  const storm: StormFigures = { policy, rejoin99Ms, rejoin100Ms, rejoin99At, rejoin100At, rejoined, ...counts, refusedHttp, acked: ackCount, lost, missedWhileAway, ...recovery }
  return { ...emptyResult(), connect, seconds: rejoin100Ms / 1000, published: nextSeq - 1, acks: ackCount, clientCpu, storm }
}

/** A LoadResult with the fields S6 does not measure left empty (the harness adds the server's figures). */
function emptyResult (): LoadResult {
  return emptyLoadResult('s6', protocol as LoadResult['protocol'], members, errors)
}

main().then((result) => {
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
}, (err: unknown) => {
  error(`fatal: ${(err as Error)?.stack ?? String(err)}`)
  process.stdout.write(JSON.stringify(emptyResult()) + '\n', () => process.exit(1))
})
