/**
 * The report of a benchmark run: per-run metrics, medians with min-max over the repetitions, ratios of
 * fastify-realtime to every other target of the same run, a markdown section and a hand-written SVG chart.
 *
 * Used by bench/run.ts; also a CLI that re-renders the markdown and SVG from a results file:
 *   node --import tsx bench/report.ts [bench/results.json] [docs/benchmarks.md] [docs/benchmarks.svg]
 *
 * The markdown file is only rewritten between `<!-- bench:results:start -->` and `<!-- bench:results:end -->`
 * when those markers exist, so prose around the results survives a new run.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median } from './common.js'
import type { LoadResult, Scenario } from './load.js'

export interface RunRecord {
  scenario: Scenario
  target: string
  rep: number
  ok: boolean
  errors: string[]
  result: LoadResult | undefined
  wallSeconds: number
  /** How many times the run was made (re-made when background load exceeded --max-background). */
  attempts?: number
}

export interface BenchResults {
  meta: {
    date: string
    command: string
    durationSeconds: number
    machine: { cpus: number, cpuModel: string, memoryGiB: number, kernel: string, node: string }
    versions: Record<string, string>
    options: Record<string, number>
    targets: Record<string, string>
    git?: { commit: string, libDirty: boolean, libChangedDuringRun?: boolean }
    smoke: boolean
  }
  runs: RunRecord[]
}

/** Every number derived from one run. NaN when it does not apply. */
export interface RunMetrics {
  deliveriesPerSec: number
  p50: number
  p99: number
  max: number
  /** Server CPU (user+system, every server process) per delivery, µs. */
  usPerDelivery: number
  /** Server CPU seconds in the window, every server process. */
  serverCpuS: number
  /** Share of the server CPU spent in the kernel (stime). */
  serverSysShare: number
  /** Server CPU seconds per server process (node A, node B). */
  serverCpuPerProcS: number[]
  clientCpuS: number
  /** redis-server CPU seconds in the window. */
  redisCpuS: number
  /** S3: redis-server CPU (every Redis process: one server, or every cluster node) per published message, µs. */
  redisUsPerMessage: number
  /** CPU seconds used by other processes of the machine during the window. */
  otherCpuS: number
  /** S4 */
  kibPerConnection: number
  /** S4: V8 heapUsed + external per connection. */
  heapKibPerConnection: number
  connectionsPerSec: number
  /** S4: server CPU per established connection, µs. */
  usPerConnection: number
  /** S5: median over the messages of the time from publish to the last delivery, ms. */
  fanoutMs: number
  fanoutFirstMs: number
  fanoutP50Ms: number
  /** Connections the run opened (S7: fewer than asked when the open files limit is lower). */
  connections: number
  /** Bytes on the wire (read by the clients' sockets) per delivery. */
  wireBytesPerDelivery: number
  /** S6: from the restart to 99 % / 100 % of the members re-joined, ms. */
  rejoin99Ms: number
  rejoin100Ms: number
  /** S6: from the restarted server's `ready` to 100 % re-joined, ms (the process start-up left out); its downtime, ms. */
  rejoinAfterReadyMs: number
  stormDowntimeMs: number
  /** S6: the restarted server's peak CPU (cores over 500 ms) and peak RSS (MiB) during the storm. */
  stormPeakCores: number
  stormPeakRssMiB: number
  /** S6: failed handshakes (TCP refused, HTTP refused, timed out) during the storm. */
  stormRefused: number
  /** S6: connection attempts dropped by a full listen queue during the storm (machine-wide counter). */
  stormListenOverflows: number
  /** S6: acknowledged messages a connected member missed; and those published while members were away. */
  stormLost: number
  stormMissedWhileAway: number
  /** S6 with history: members whose re-join answered recovered: true. */
  stormRecovered: number
  /** S6 with history: member-messages missed by members whose re-join answered recovered: true (must be 0). */
  stormMissedRecovered: number
}

export function runMetrics (r: RunRecord): RunMetrics | undefined {
  const x = r.result
  if (!r.ok || x === undefined) return undefined
  const perProc = x.serverCpu.map((c) => c.user + c.system)
  const serverCpuS = perProc.reduce((s, v) => s + v, 0)
  const serverSys = x.serverCpu.reduce((s, c) => s + c.system, 0)
  const deliveries = x.deliveries
  return {
    deliveriesPerSec: r.scenario === 's4' ? NaN : x.deliveriesPerSec,
    p50: x.latency.p50,
    p99: x.latency.p99,
    max: x.latency.max,
    usPerDelivery: deliveries > 0 ? serverCpuS / deliveries * 1e6 : NaN,
    serverCpuS,
    serverSysShare: serverCpuS > 0 ? serverSys / serverCpuS : NaN,
    serverCpuPerProcS: perProc,
    clientCpuS: x.clientCpu.user + x.clientCpu.system,
    redisCpuS: x.auxCpu.reduce((s, c) => s + c.user + c.system, 0),
    // Messages in the window: each one reaches every member once.
    redisUsPerMessage: x.auxCpu.length === 0 || deliveries === 0 ? NaN : x.auxCpu.reduce((s, c) => s + c.user + c.system, 0) / (deliveries / x.members) * 1e6,
    otherCpuS: x.otherCpuS ?? 0,
    kibPerConnection: x.rss?.perConnectionKiB ?? NaN,
    heapKibPerConnection: x.heap?.perConnectionKiB ?? NaN,
    connectionsPerSec: x.connect.perSec,
    usPerConnection: r.scenario === 's4' && x.connect.count > 0 ? serverCpuS / x.connect.count * 1e6 : NaN,
    fanoutMs: x.fanoutMs === undefined ? NaN : median(x.fanoutMs),
    fanoutFirstMs: x.fanoutMs?.[0] ?? NaN,
    fanoutP50Ms: x.fanoutP50Ms === undefined ? NaN : median(x.fanoutP50Ms),
    connections: x.connect.count,
    wireBytesPerDelivery: x.wireBytes === undefined || deliveries === 0 ? NaN : x.wireBytes / deliveries,
    rejoin99Ms: x.storm?.rejoin99Ms ?? NaN,
    rejoin100Ms: x.storm?.rejoin100Ms ?? NaN,
    rejoinAfterReadyMs: (x.storm?.rejoin100At ?? NaN) - (x.storm?.server?.readyAt ?? NaN),
    stormDowntimeMs: x.storm?.server?.downtimeMs ?? NaN,
    stormPeakCores: x.storm?.server?.peakCores ?? NaN,
    stormPeakRssMiB: (x.storm?.server?.peakRssKiB ?? NaN) / 1024,
    stormRefused: x.storm === undefined ? NaN : x.storm.refusedTcp + x.storm.timedOut + Object.values(x.storm.refusedHttp).reduce((a, b) => a + b, 0),
    stormListenOverflows: x.storm?.server?.listenOverflows ?? NaN,
    stormLost: x.storm?.lost ?? NaN,
    stormMissedWhileAway: x.storm?.missedWhileAway ?? NaN,
    stormRecovered: x.storm?.recovered ?? NaN,
    stormMissedRecovered: x.storm?.missedRecovered ?? NaN
  }
}

type ScalarMetric = Exclude<keyof RunMetrics, 'serverCpuPerProcS'>
export interface Stat { median: number, min: number, max: number, n: number }
export interface TargetSummary {
  scenario: Scenario
  target: string
  runs: number
  failed: number
  stats: Record<ScalarMetric, Stat>
  /** Median CPU seconds of each server process. */
  serverCpuPerProcS: number[]
}

function stat (values: number[]): Stat {
  const v = values.filter(Number.isFinite)
  return { median: median(v), min: v.length > 0 ? Math.min(...v) : NaN, max: v.length > 0 ? Math.max(...v) : NaN, n: v.length }
}

const SCALARS: ScalarMetric[] = [
  'deliveriesPerSec', 'p50', 'p99', 'max', 'usPerDelivery', 'serverCpuS', 'serverSysShare', 'clientCpuS', 'redisCpuS', 'redisUsPerMessage', 'otherCpuS',
  'kibPerConnection', 'heapKibPerConnection', 'connectionsPerSec', 'usPerConnection', 'fanoutMs', 'fanoutFirstMs', 'fanoutP50Ms',
  'connections', 'wireBytesPerDelivery', 'rejoin99Ms', 'rejoin100Ms', 'rejoinAfterReadyMs', 'stormDowntimeMs', 'stormPeakCores', 'stormPeakRssMiB', 'stormRefused', 'stormListenOverflows', 'stormLost', 'stormMissedWhileAway', 'stormRecovered', 'stormMissedRecovered'
]

export function summarize (results: BenchResults): TargetSummary[] {
  const groups = new Map<string, RunRecord[]>()
  for (const r of results.runs) {
    const key = `${r.scenario}\0${r.target}`
    const list = groups.get(key) ?? []
    list.push(r)
    groups.set(key, list)
  }
  const out: TargetSummary[] = []
  for (const list of groups.values()) {
    const metrics = list.map(runMetrics).filter((m): m is RunMetrics => m !== undefined)
    const stats = Object.fromEntries(SCALARS.map((k) => [k, stat(metrics.map((m) => m[k]))])) as Record<ScalarMetric, Stat>
    const procs = Math.max(0, ...metrics.map((m) => m.serverCpuPerProcS.length))
    out.push({
      scenario: list[0]!.scenario,
      target: list[0]!.target,
      runs: list.length,
      failed: list.filter((r) => !r.ok).length,
      stats,
      serverCpuPerProcS: Array.from({ length: procs }, (_, i) => median(metrics.map((m) => m.serverCpuPerProcS[i] ?? NaN)))
    })
  }
  const order: Scenario[] = ['s1', 's2', 's3', 's4', 's5', 's6', 's7']
  return out.sort((a, b) => order.indexOf(a.scenario) - order.indexOf(b.scenario))
}

// ---------------------------------------------------------------------------------------------------------
// Formatting

export function fmt (v: number): string {
  if (!Number.isFinite(v)) return '–'
  const a = Math.abs(v)
  if (a >= 10000) return Math.round(v).toLocaleString('en-US')
  if (a >= 100) return v.toFixed(0)
  if (a >= 10) return v.toFixed(1)
  return v.toFixed(2)
}

function range (s: Stat): string {
  if (s.n === 0) return '–'
  if (s.n === 1) return fmt(s.median)
  return `${fmt(s.median)} <sub>${fmt(s.min)}–${fmt(s.max)}</sub>`
}

function ratio (a: Stat, b: Stat): string {
  if (!Number.isFinite(a.median) || !Number.isFinite(b.median) || b.median === 0) return '–'
  return `${(a.median / b.median).toFixed(2)}×`
}

const SCENARIO_TITLES: Record<Scenario, string> = {
  s1: 'S1 — fan-out throughput, one node',
  s2: 'S2 — latency at a fixed rate',
  s3: 'S3 — two nodes + Redis',
  s4: 'S4 — memory per idle connection',
  s5: 'S5 — scale: one message to every connection',
  s6: 'S6 — reconnect storm: the node restarts, every client comes back',
  s7: 'S7 — idle connections at scale on one node (100,000 where the open files limit allows)'
}

function scenarioLine (s: Scenario, o: Record<string, number>): string {
  switch (s) {
    case 's1': return `${o.members} members of one channel on one node; the publisher (one of the members) keeps ${o.window} messages ` +
      `in flight (a message is done when all ${o.members} deliveries arrived), ~${o.payload}-byte payload; ` +
      `${o.warmup} s warm-up, ${o.duration} s measured.`
    case 's2': return `${o.members} members, ${o.rate} msg/s for ${o.rateDuration} s (after 1 s unmeasured), ~${o.payload}-byte payload. ` +
      'Latency is publish → receive over every delivery.'
    case 's3': return `${o.members} members split evenly across two server nodes sharing one redis-server; the publisher is on node A ` +
      `(closed loop, ${o.window} messages in flight). Server CPU is both nodes; redis-server CPU is listed apart.`
    case 's4': return `${o.idleConnections} connections, each joined to one of ${o.idleChannels} channels, after ${o.idleWarm ?? 100} ` +
      'warm-up connections (the JIT compiles the connection path before the measured ones); server VmRSS after a forced GC, before and after, divided by the connections. ' +
      `Connection rate: full handshake + welcome + join, ${o.concurrency} in parallel.`
    case 's5': return `${o.scaleConnections} connections in one channel on one node; ${o.scaleMessages} messages published one at a time ` +
      '(each waits until every connection received the previous one). Time to deliver = publish → last delivery, median over the messages.'
    case 's6': return `${o.stormConnections} connections joined to one channel on one node, a publisher sending ${o.stormRate} msg/s through it; ` +
      'the server process is stopped (SIGTERM, as a deploy) and started again on the same port. Every client reconnects with its own ' +
      'policy (fastify-realtime and ws-raw: the client SDK\'s backoffDelay, 500 ms-30 s, full jitter; Socket.IO: socket.io-client\'s ' +
      'defaults, 1-5 s ±50 %) and re-joins. Times are from the first close the clients see (server down: from SIGTERM to the new ' +
      'process listening, its start-up included; after ready: from then to the last re-join); peak CPU (cores over 500 ms) and RSS ' +
      'are the restarted process\'s; refused = TCP refused + HTTP refused + timed out attempts; listen queue overflows = SYNs ' +
      'the kernel dropped because the accept queue was full (TcpExt ListenOverflows, machine-wide; the fastify-realtime target listens with a backlog of 4096, the others with the Node default of 511); lost = acknowledged messages a ' +
      'connected member never got; missed while away = member-messages published while members were disconnected (what history recovery restores); ' +
      'with history (fastify-realtime+redis+history), every client re-joins with since: recovered re-joins = members whose re-join answered ' +
      'recovered: true, missed by recovered = member-messages such a member still missed (must be 0).'
    case 's7': return `${o.scaleIdleConnections} connections (asked: 100,000 unless --scale-idle-connections; fewer when the open files limit is lower) joined to one channel on one node, sources spread over 127.0.0.2-5; ` +
      'RSS per connection (after forced GCs, before and after the connections), then one broadcast to all: time from publish to the ' +
      'last delivery and the server CPU of that broadcast per delivery. The load generator receives every delivery on the same 2 cores.'
  }
}

function reference (rows: TargetSummary[]): TargetSummary | undefined {
  return rows.find((r) => r.target.startsWith('fastify-realtime'))
}

function cpuPerProc (row: TargetSummary): string {
  const names = row.serverCpuPerProcS.length > 1 ? ['A', 'B'] : ['']
  return row.serverCpuPerProcS.map((v, i) => `${names[i] ?? ''}${names[i] === '' ? '' : ' '}${fmt(v)}`).join(' + ')
}

function table (scenario: Scenario, rows: TargetSummary[]): string {
  const ref = reference(rows)
  const lines: string[] = []
  const head = (cols: string[]): void => {
    lines.push(`| ${cols.join(' | ')} |`)
    lines.push(`|${cols.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`)
  }
  const refName = ref?.target ?? 'fastify-realtime'
  if (scenario === 's1' || scenario === 's3') {
    const cols = ['target', 'deliveries/s', 'p50 ms', 'p99 ms', '**server CPU µs/delivery**', 'kernel share', 'wire B/delivery', 'server CPU s', 'client CPU s']
    if (scenario === 's3') cols.push('redis CPU s', 'redis CPU µs/message')
    cols.push(`${refName} ÷ target: µs/delivery`, 'deliveries/s')
    head(cols)
    for (const r of rows) {
      const s = r.stats
      const c = [r.target, range(s.deliveriesPerSec), range(s.p50), range(s.p99), `**${range(s.usPerDelivery)}**`,
        `${fmt(s.serverSysShare.median * 100)} %`, fmt(s.wireBytesPerDelivery.median), cpuPerProc(r), fmt(s.clientCpuS.median)]
      if (scenario === 's3') c.push(fmt(s.redisCpuS.median), fmt(s.redisUsPerMessage.median))
      c.push(r === ref || ref === undefined ? '1' : ratio(ref.stats.usPerDelivery, s.usPerDelivery),
        r === ref || ref === undefined ? '1' : ratio(ref.stats.deliveriesPerSec, s.deliveriesPerSec))
      lines.push(`| ${c.join(' | ')} |`)
    }
  } else if (scenario === 's2') {
    head(['target', 'p50 ms', 'p99 ms', 'max ms', 'deliveries/s', '**server CPU µs/delivery**', 'server CPU s', 'client CPU s',
      `${refName} ÷ target: µs/delivery`, 'p99'])
    for (const r of rows) {
      const s = r.stats
      lines.push(`| ${[r.target, range(s.p50), range(s.p99), range(s.max), fmt(s.deliveriesPerSec.median), `**${range(s.usPerDelivery)}**`,
        cpuPerProc(r), fmt(s.clientCpuS.median),
        r === ref || ref === undefined ? '1' : ratio(ref.stats.usPerDelivery, s.usPerDelivery),
        r === ref || ref === undefined ? '1' : ratio(ref.stats.p99, s.p99)].join(' | ')} |`)
    }
  } else if (scenario === 's4') {
    head(['target', '**RSS KiB/connection**', 'heap+external KiB/connection', 'connections/s', 'server CPU µs/connection', 'client CPU s',
      `${refName} ÷ target: KiB/connection`, 'connections/s', 'µs/connection'])
    for (const r of rows) {
      const s = r.stats
      lines.push(`| ${[r.target, `**${range(s.kibPerConnection)}**`, range(s.heapKibPerConnection), range(s.connectionsPerSec), range(s.usPerConnection), fmt(s.clientCpuS.median),
        r === ref || ref === undefined ? '1' : ratio(ref.stats.kibPerConnection, s.kibPerConnection),
        r === ref || ref === undefined ? '1' : ratio(ref.stats.connectionsPerSec, s.connectionsPerSec),
        r === ref || ref === undefined ? '1' : ratio(ref.stats.usPerConnection, s.usPerConnection)].join(' | ')} |`)
    }
  } else if (scenario === 's6') {
    head(['target', '**100 % re-joined ms**', '99 % re-joined ms', 'server down ms', '100 % after ready ms', 'peak server cores', 'peak server RSS MiB', 'refused attempts', 'listen queue overflows',
      'lost', 'missed while away', 'recovered re-joins', 'missed by recovered', `${refName} ÷ target: 100 % time`])
    for (const r of rows) {
      const s = r.stats
      lines.push(`| ${[r.target, `**${range(s.rejoin100Ms)}**`, range(s.rejoin99Ms), range(s.stormDowntimeMs), range(s.rejoinAfterReadyMs), range(s.stormPeakCores), range(s.stormPeakRssMiB),
        range(s.stormRefused), range(s.stormListenOverflows), range(s.stormLost), range(s.stormMissedWhileAway),
        range(s.stormRecovered), range(s.stormMissedRecovered),
        r === ref || ref === undefined ? '1' : ratio(ref.stats.rejoin100Ms, s.rejoin100Ms)].join(' | ')} |`)
    }
  } else if (scenario === 's7') {
    head(['target', 'connections', 'connections/s', '**RSS KiB/connection**', 'heap+external KiB/connection', '**broadcast to all ms**',
      'server CPU µs/delivery', `${refName} ÷ target: KiB/connection`, 'broadcast time'])
    for (const r of rows) {
      const s = r.stats
      lines.push(`| ${[r.target, fmt(s.connections.median), range(s.connectionsPerSec), `**${range(s.kibPerConnection)}**`, range(s.heapKibPerConnection),
        `**${range(s.fanoutMs)}**`, range(s.usPerDelivery),
        r === ref || ref === undefined ? '1' : ratio(ref.stats.kibPerConnection, s.kibPerConnection),
        r === ref || ref === undefined ? '1' : ratio(ref.stats.fanoutMs, s.fanoutMs)].join(' | ')} |`)
    }
  } else {
    head(['target', '**time to deliver ms**', 'first message ms', 'median delivery ms', '**server CPU µs/delivery**',
      'connections/s', `${refName} ÷ target: time`, 'µs/delivery'])
    for (const r of rows) {
      const s = r.stats
      lines.push(`| ${[r.target, `**${range(s.fanoutMs)}**`, range(s.fanoutFirstMs), range(s.fanoutP50Ms), `**${range(s.usPerDelivery)}**`,
        range(s.connectionsPerSec),
        r === ref || ref === undefined ? '1' : ratio(ref.stats.fanoutMs, s.fanoutMs),
        r === ref || ref === undefined ? '1' : ratio(ref.stats.usPerDelivery, s.usPerDelivery)].join(' | ')} |`)
    }
  }
  return lines.join('\n')
}

export const START = '<!-- bench:results:start -->'
export const END = '<!-- bench:results:end -->'

export function markdownResults (results: BenchResults, svgHref: string): string {
  const { meta } = results
  const m = meta.machine
  const summaries = summarize(results)
  const out: string[] = []
  out.push(START)
  out.push('<!-- Generated by bench/report.ts from bench/results.json; edit the prose outside these markers only. -->')
  out.push('')
  const git = meta.git === undefined
    ? ''
    : `, commit ${meta.git.commit}${meta.git.libDirty ? ' with uncommitted lib/ changes' : ''}` +
      (meta.git.libChangedDuringRun === true ? ' (**lib/ changed during the run: the figures mix two versions**)' : '')
  out.push(`Run: ${meta.date.slice(0, 16).replace('T', ' ')} UTC${git}, \`${meta.command}\`, ${(meta.durationSeconds / 60).toFixed(1)} min.`)
  out.push('')
  out.push(`Machine: **${m.cpus} cores** (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Node.js ${m.node}. ` +
    `**The servers, the load generator and redis-server share these ${m.cpus} cores.**`)
  out.push('')
  out.push(`Versions: ${Object.entries(meta.versions).map(([k, v]) => `${k} ${v.replace(/^Redis server v=(\S+).*/, '$1')}`).join(', ')}.`)
  out.push('')
  out.push(`Each cell is the median of ${meta.options.reps} repetition${meta.options.reps === 1 ? '' : 's'}` +
    (meta.options.reps > 1 ? ' with <sub>min–max</sub>' : '') +
    '; CPU columns are medians too. Ratios divide the fastify-realtime median by the target\'s median from the same run ' +
    '(for µs/delivery, KiB and time: above 1 means fastify-realtime costs more).')
  out.push('')
  out.push(`![Benchmark chart](${svgHref})`)
  out.push('')
  const failed = results.runs.filter((r) => !r.ok)
  for (const scenario of ['s1', 's2', 's3', 's4', 's5', 's6', 's7'] as Scenario[]) {
    const rows = summaries.filter((s) => s.scenario === scenario)
    if (rows.length === 0) continue
    out.push(`### ${SCENARIO_TITLES[scenario]}`)
    out.push('')
    out.push(scenarioLine(scenario, meta.options))
    out.push('')
    out.push(table(scenario, rows))
    out.push('')
    const bg = Math.max(...rows.map((r) => r.stats.otherCpuS.max).filter(Number.isFinite), 0)
    const busiest = results.runs.filter((r) => r.scenario === scenario && r.result !== undefined)
      .map((r) => (r.result!.otherCpuS ?? 0) / Math.max(1e-9, r.result!.seconds))
    const bgShare = Math.max(0, ...busiest)
    const limit = meta.options.maxBackground ?? 0.15
    const noisy = results.runs.filter((r) => r.scenario === scenario && r.result !== undefined && r.result.seconds > 0 &&
      (r.result.otherCpuS ?? 0) / r.result.seconds > limit)
      .map((r) => `${r.target} rep ${r.rep} (${fmt((r.result!.otherCpuS / r.result!.seconds) * 100)} %)`)
    out.push('Background CPU (processes other than the servers, redis-server and the load generator) during the measured ' +
      `windows: at most ${fmt(bg)} s, ${fmt(bgShare * 100)} % of one core.` +
      (noisy.length === 0
        ? ''
        : ` Still above ${fmt(limit * 100)} % of a core after the retries (the least loaded attempt is kept): ${noisy.join(', ')}.`))
    out.push('')
  }
  if (failed.length > 0) {
    out.push('### Failed runs')
    out.push('')
    for (const r of failed) out.push(`- ${r.scenario} ${r.target} rep ${r.rep}: ${r.errors.join('; ').replace(/\n/g, ' ').slice(0, 300)}`)
    out.push('')
  }
  out.push(END)
  return out.join('\n')
}

function markdownDocument (results: BenchResults, svgHref: string): string {
  return [
    '# Benchmarks',
    '',
    'Generated by `npm run bench` (bench/run.ts). Method, targets and scenarios: see bench/run.ts and bench/load.ts.',
    '',
    markdownResults(results, svgHref),
    ''
  ].join('\n')
}

// ---------------------------------------------------------------------------------------------------------
// SVG

interface Panel { scenario: Scenario, metric: ScalarMetric, title: string, unit: string, better: 'lower' | 'higher' }

const PANELS: Panel[] = [
  { scenario: 's1', metric: 'usPerDelivery', title: 'S1 fan-out, 1 node: server CPU per delivery', unit: 'µs', better: 'lower' },
  { scenario: 's1', metric: 'deliveriesPerSec', title: 'S1 fan-out, 1 node: deliveries/s', unit: '/s', better: 'higher' },
  { scenario: 's2', metric: 'usPerDelivery', title: 'S2 50 msg/s: server CPU per delivery', unit: 'µs', better: 'lower' },
  { scenario: 's2', metric: 'p99', title: 'S2 50 msg/s: p99 latency', unit: 'ms', better: 'lower' },
  { scenario: 's3', metric: 'usPerDelivery', title: 'S3 2 nodes + Redis: server CPU per delivery', unit: 'µs', better: 'lower' },
  { scenario: 's3', metric: 'deliveriesPerSec', title: 'S3 2 nodes + Redis: deliveries/s', unit: '/s', better: 'higher' },
  { scenario: 's4', metric: 'kibPerConnection', title: 'S4 RSS per idle joined connection', unit: 'KiB', better: 'lower' },
  { scenario: 's5', metric: 'fanoutMs', title: 'S5 one message to every connection: time to deliver', unit: 'ms', better: 'lower' },
  { scenario: 's6', metric: 'rejoin100Ms', title: 'S6 reconnect storm: time until every client re-joined', unit: 'ms', better: 'lower' },
  { scenario: 's6', metric: 'stormPeakRssMiB', title: 'S6 reconnect storm: peak server RSS', unit: 'MiB', better: 'lower' },
  { scenario: 's7', metric: 'kibPerConnection', title: 'S7 idle connections at scale: RSS per connection', unit: 'KiB', better: 'lower' },
  { scenario: 's7', metric: 'fanoutMs', title: 'S7 idle connections at scale: one broadcast to all', unit: 'ms', better: 'lower' }
]

function esc (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function colour (target: string): string {
  if (target.startsWith('fastify-realtime')) return '#2563eb'
  if (target.startsWith('socket.io')) return '#d97706'
  if (target.startsWith('ws-prebuilt')) return '#86a17c'
  return '#4d7c0f'
}

export function svgChart (results: BenchResults): string {
  const summaries = summarize(results)
  const panels = PANELS
    .map((p) => ({ p, rows: summaries.filter((s) => s.scenario === p.scenario && Number.isFinite(s.stats[p.metric].median)) }))
    .filter((x) => x.rows.length > 0)
  const W = 1000
  const margin = 20
  const gap = 30
  const colW = (W - 2 * margin - gap) / 2
  const labelW = 160
  const valueW = 92
  const barH = 18
  const barGap = 8
  const titleH = 40
  const parts: string[] = []
  let y = 64
  for (let i = 0; i < panels.length; i += 2) {
    const row = panels.slice(i, i + 2)
    const rowH = titleH + Math.max(...row.map((x) => x.rows.length)) * (barH + barGap) + 16
    row.forEach(({ p, rows }, j) => {
      const x0 = margin + j * (colW + gap)
      const barArea = colW - labelW - valueW
      const top = Math.max(...rows.map((r) => Math.max(r.stats[p.metric].max, r.stats[p.metric].median)))
      const scale = top > 0 ? barArea / top : 0
      parts.push(`<g transform="translate(${x0.toFixed(1)},${y})">`)
      parts.push(`<text x="0" y="14" class="title">${esc(p.title)}</text>`)
      parts.push(`<text x="0" y="30" class="sub">${esc(p.unit === '/s' ? 'per second' : p.unit)}, ${p.better} is better; bar = median, whisker = min–max</text>`)
      rows.forEach((r, k) => {
        const s = r.stats[p.metric]
        const by = titleH + k * (barH + barGap)
        const w = Math.max(1, s.median * scale)
        parts.push(`<text x="${labelW - 8}" y="${by + barH - 5}" class="label" text-anchor="end">${esc(r.target)}</text>`)
        parts.push(`<rect x="${labelW}" y="${by}" width="${w.toFixed(1)}" height="${barH}" fill="${colour(r.target)}" rx="2"/>`)
        if (s.n > 1 && s.max > s.min) {
          const x1 = labelW + s.min * scale
          const x2 = labelW + s.max * scale
          const cy = by + barH / 2
          parts.push(`<path d="M${x1.toFixed(1)} ${cy}H${x2.toFixed(1)}M${x1.toFixed(1)} ${cy - 5}v10M${x2.toFixed(1)} ${cy - 5}v10" class="whisker"/>`)
        }
        const tx = labelW + Math.max(w, s.max * scale || 0) + 6
        const unit = p.unit === '/s' ? '' : ` ${p.unit}`
        parts.push(`<text x="${tx.toFixed(1)}" y="${by + barH - 5}" class="value">${esc(fmt(s.median) + unit)}</text>`)
      })
      parts.push('</g>')
    })
    y += rowH
  }
  const m = results.meta.machine
  const foot1 = `${m.cpus} cores (${m.cpuModel}), Node.js ${m.node}, ${results.meta.date.slice(0, 10)}: the servers, the load generator and ` +
    `redis-server share the ${m.cpus} cores.`
  const o = results.meta.options
  const foot2 = `${results.meta.command}   (S1-S3: ${o.members} members; S5: ${o.scaleConnections}; S6: ${o.stormConnections ?? '–'}; S7: ${o.scaleIdleConnections ?? '–'} connections)`
  const H = y + 44
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif">`,
    '<style>.title{font-size:14px;font-weight:600;fill:#111827}.sub{font-size:11px;fill:#6b7280}.label{font-size:12px;fill:#1f2937}' +
      '.value{font-size:12px;fill:#111827}.whisker{stroke:#111827;stroke-width:1.2;fill:none}.foot{font-size:11px;fill:#6b7280}' +
      '.head{font-size:18px;font-weight:700;fill:#111827}</style>',
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${margin}" y="30" class="head">fastify-realtime vs ws and Socket.IO (${results.meta.options.reps === 1 ? 'one run' : `medians of ${results.meta.options.reps} runs`})</text>`,
    `<text x="${margin}" y="48" class="sub">Server CPU per delivery is the figure that shows the server's own cost; deliveries/s is bounded by the load generator on 2 cores.</text>`,
    ...parts,
    `<text x="${margin}" y="${H - 26}" class="foot">${esc(foot1)}</text>`,
    `<text x="${margin}" y="${H - 10}" class="foot">${esc(foot2)}</text>`,
    '</svg>',
    ''
  ].join('\n')
}

// ---------------------------------------------------------------------------------------------------------

export function writeReport (results: BenchResults, paths: { md: string, svg: string, json: string }): void {
  mkdirSync(dirname(paths.svg), { recursive: true })
  writeFileSync(paths.svg, svgChart(results))
  const href = relative(dirname(paths.md), paths.svg) || 'benchmarks.svg'
  const section = markdownResults(results, href)
  mkdirSync(dirname(paths.md), { recursive: true })
  if (existsSync(paths.md)) {
    const current = readFileSync(paths.md, 'utf8')
    const a = current.indexOf(START)
    const b = current.indexOf(END)
    if (a >= 0 && b > a) {
      writeFileSync(paths.md, current.slice(0, a) + section + current.slice(b + END.length))
      return
    }
  }
  writeFileSync(paths.md, markdownDocument(results, href))
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
  const json = resolve(process.argv[2] ?? `${root}/bench/results.json`)
  const md = resolve(process.argv[3] ?? `${root}/docs/benchmarks.md`)
  const svg = resolve(process.argv[4] ?? `${root}/docs/benchmarks.svg`)
  writeReport(JSON.parse(readFileSync(json, 'utf8')) as BenchResults, { md, svg, json })
  process.stderr.write(`report: wrote ${md} and ${svg}\n`)
}
