/**
 * Prometheus metrics of one plugin instance, created on the app's own client and registry (`prom-client`,
 * `@prometheus-io/client`, or fastify-metrics' `app.metrics.client`): the plugin has no metrics dependency and
 * never registers Node's default metrics.
 *
 * Cost model: the hot paths only add to plain numbers held here (`Metrics` methods: an array slot or a field, no
 * allocation, no label hashing); the Prometheus counters take the difference at scrape time in their `collect()`
 * callback, and gauges read the node's state there too. Only the histograms observe directly, once per handled
 * action, publish or connection. The fan-out calls `delivered(n, bytes)` once per message per node, never per
 * member. Label values come only from closed sets (frame types, close codes, statuses, wire codes) or the app's
 * registered action names; never a channel, deviceId, IP or raw client input.
 */
import { performance } from 'node:perf_hooks'
import { FST_REALTIME_METRICS_CONFLICT } from './errors.js'
import type { CounterLike, GaugeLike, HistogramLike, ResolvedMetricsOptions } from './metrics-options.js'
import {
  CLOSE_CODE_LABELS, HANDSHAKE_STATUS_LABELS, METRICS, RECEIVED_FRAME_TYPES, RECOVERY_OUTCOMES, SENT_FRAME_TYPES,
  type MetricName
} from './metric-catalogue.js'
import { WireErrorCode } from './protocol.js'

/** What the gauges and the already counted events read at scrape time. */
export interface MetricsSource {
  /** Open connections on this node. */
  connections: () => number
  /** Channels with at least one member on this node. */
  channels: () => number
  /** Adapter topics (channels and deviceIds) this node is subscribed to. */
  topics: () => number
  /** Publishes handed to the adapter and not settled. */
  inflight: () => number
  /** Whether the adapter reaches its backend. */
  adapterUp: () => boolean
  /** The node's event counters (lib/counters.ts), shared with `stats()`: read, never copied. */
  counters: { readonly deliveriesDropped: number, readonly slowConsumersClosed: number, readonly floodsClosed: number }
}

/** Which label values exist: the registry's actions and the frame types of enabled features. */
export interface MetricsShape {
  /** Every registered action name (`actions_total{action}`). */
  actions: Iterable<string>
  /** Actions answered by a handler (`action_duration_seconds{action}`). */
  handledActions: Iterable<string>
  /** Client frame types added by features (history, presence), on top of the catalogue's `RECEIVED_FRAME_TYPES`. */
  receivedFrameTypes?: readonly string[]
  /** Server frame types added by features, on top of `SENT_FRAME_TYPES`. */
  sentFrameTypes?: readonly string[]
  /** Wire error codes on top of `WireErrorCode` (any other code is counted as `app`). */
  errorCodes?: readonly string[]
  /** History is enabled: `recoveries_total{outcome}` exists. */
  history?: boolean
}

/**
 * The recording API called on the hot paths. With metrics off the plugin holds `NO_METRICS`, whose methods do
 * nothing (and whose `now()` reads no clock), so call sites need no `if`. Times are `now()` values (ms).
 */
export interface Metrics {
  /** A monotonic time in ms to pass back to the `*Done`/`connectionClosed` methods; 0 when metrics are off. */
  now: () => number
  /** A WebSocket connection opened (after the 101). */
  connectionOpened: () => void
  /** A connection closed with `code` (RFC 6455 close code as seen by the server); `openedAt` is its `now()`. */
  connectionClosed: (code: number, openedAt: number) => void
  /** An upgrade was answered `status` instead of 101. */
  handshakeRejected: (status: number) => void
  /** A client text frame of `bytes` payload bytes arrived (counted before the rate limit and parsing). */
  bytesReceived: (bytes: number) => void
  /** A client frame was parsed (dispatched or answered RATE_LIMITED): its frame type, or `'invalid'`. */
  frameReceived: (type: string) => void
  /**
   * A serialised server frame (a reply or push, not a delivery) was sent. Its type is read from its leading
   * `{"type":"<type>"` (every frame builder of protocol.ts writes `type` first) and its bytes computed only here,
   * with metrics on.
   */
  frameSent: (frame: string) => void
  /** One message fanned out to `members` local members (each a `message` frame of `bytes` payload bytes). */
  delivered: (members: number, bytes: number) => void
  /** An action frame for a registered action passed the envelope checks. */
  action: (name: string) => void
  /** An error frame with `code` was sent (a code outside the wire codes counts as `app`). */
  error: (code: string) => void
  /** A handled action's handler settled; `startedAt` is the `now()` taken when it was called. */
  actionDone: (name: string, startedAt: number) => void
  /** An adapter publish settled; `startedAt` is the `now()` taken before it. */
  publishDone: (startedAt: number) => void
  /** The adapter failed a publish, subscribe or unsubscribe. */
  adapterError: () => void
  /** A recovery on join (history) ended with `outcome`. */
  recovery: (outcome: 'recovered' | 'not_recovered') => void
  /** Removes this instance's metrics from the registry (onClose). Idempotent. */
  close: () => void
}

function noop (): void {}

/** How every serialised server frame starts (see `frameSent`). */
const TYPE_FIRST = '{"type":"'

/** The `Metrics` of a plugin without the `metrics` option: every method does nothing. */
export const NO_METRICS: Metrics = Object.freeze({
  now: () => 0,
  connectionOpened: noop,
  connectionClosed: noop,
  handshakeRejected: noop,
  bytesReceived: noop,
  frameReceived: noop,
  frameSent: noop,
  delivered: noop,
  action: noop,
  error: noop,
  actionDone: noop,
  publishDone: noop,
  adapterError: noop,
  recovery: noop,
  close: noop
})

/** Plain per-label tallies of one counter family; the counter takes the difference at scrape time. */
class Tally {
  readonly labels: ReadonlyArray<Record<string, string>>
  readonly values: Float64Array
  readonly #index: Map<string | number, number>
  readonly #last: Float64Array
  readonly #fallback: number

  constructor (label: string, values: ReadonlyArray<string | number>, fallback?: string) {
    const all = fallback === undefined ? values : [...values, fallback]
    this.labels = all.map((value) => ({ [label]: String(value) }))
    this.values = new Float64Array(all.length)
    this.#last = new Float64Array(all.length)
    this.#index = new Map(values.map((value, i) => [value, i]))
    this.#fallback = fallback === undefined ? -1 : all.length - 1
  }

  /** Slot of `key`, or the fallback's, or -1. */
  slot (key: string | number): number {
    return this.#index.get(key) ?? this.#fallback
  }

  add (key: string | number, n: number): void {
    const i = this.#index.get(key) ?? this.#fallback
    if (i >= 0) this.values[i] += n
  }

  /** Adds what was tallied since the last scrape to `counter`, one series per label value. */
  flush (counter: CounterLike): void {
    for (let i = 0; i < this.values.length; i++) {
      const delta = this.values[i]! - this.#last[i]!
      if (delta > 0) {
        counter.inc(this.labels[i]!, delta)
        this.#last[i] = this.values[i]!
      }
    }
  }
}

/**
 * Creates this instance's metrics in `options.registry`, every series of a closed label set starting at 0.
 * @throws FST_REALTIME_METRICS_CONFLICT when a name is already registered (another live instance on the same
 *   registry and prefix, or the app's own metric); nothing is left registered then.
 */
export function createMetrics (options: ResolvedMetricsOptions, source: MetricsSource, shape: MetricsShape): Metrics {
  const { client, registry, prefix, buckets } = options
  const registers = [registry]
  /** Every metric this instance registered, to remove exactly those on close. */
  const created: Array<{ name: string, metric: unknown }> = []
  const names = (Object.keys(METRICS) as MetricName[])
    .filter((name) => shape.history === true || !('history' in METRICS[name]))
    .map((name) => prefix + name)
  for (const name of names) {
    if (registry.getSingleMetric(name) !== undefined) throw new FST_REALTIME_METRICS_CONFLICT(name)
  }
  const removeAll = (): void => {
    for (const { name, metric } of created) {
      // Only our own: the app may have registered another metric under a freed name since.
      if (registry.getSingleMetric(name) === metric) registry.removeSingleMetric(name)
    }
    created.length = 0
  }

  const received = new Tally('type', [...RECEIVED_FRAME_TYPES, ...(shape.receivedFrameTypes ?? [])])
  const sent = new Tally('type', [...SENT_FRAME_TYPES, ...(shape.sentFrameTypes ?? [])])
  const closedCodes = new Tally('code', [...CLOSE_CODE_LABELS, 'app'], 'other')
  const rejected = new Tally('status', HANDSHAKE_STATUS_LABELS, 'other')
  const actions = new Tally('action', [...shape.actions])
  const errors = new Tally('code', [...new Set([...Object.values(WireErrorCode), ...(shape.errorCodes ?? [])])], 'app')
  const recoveries = new Tally('outcome', RECOVERY_OUTCOMES)
  const totals = { opened: 0, receivedBytes: 0, sentBytes: 0, deliveries: 0, adapterErrors: 0 }
  const sentMessage = sent.slot('message')

  let actionDuration: HistogramLike
  let publishDuration: HistogramLike
  let connectionDuration: HistogramLike
  try {
    const gauge = (name: MetricName, read: () => number): void => {
      const metric: GaugeLike = new client.Gauge({ name: prefix + name, help: METRICS[name].help, registers, collect: () => { metric.set(read()) } })
      created.push({ name: prefix + name, metric })
    }
    const total = (name: MetricName, read: () => number): void => {
      let last = 0
      const metric: CounterLike = new client.Counter({
        name: prefix + name,
        help: METRICS[name].help,
        registers,
        collect: () => {
          const value = read()
          if (value > last) metric.inc(value - last)
          last = value
        }
      })
      created.push({ name: prefix + name, metric })
    }
    const family = (name: MetricName, tally: Tally): void => {
      const { help, labels: labelNames } = METRICS[name]
      const metric: CounterLike = new client.Counter({ name: prefix + name, help, registers, labelNames, collect: () => tally.flush(metric) })
      created.push({ name: prefix + name, metric })
      for (const labels of tally.labels) metric.inc(labels, 0)
    }
    const histogram = (name: MetricName, bounds: number[]): HistogramLike => {
      const { help, labels: labelNames } = METRICS[name]
      const metric = new client.Histogram({ name: prefix + name, help, registers, buckets: bounds, labelNames })
      created.push({ name: prefix + name, metric })
      return metric
    }

    gauge('connections', source.connections)
    gauge('channels', source.channels)
    gauge('adapter_topics', source.topics)
    gauge('publishes_inflight', source.inflight)
    gauge('adapter_up', () => source.adapterUp() ? 1 : 0)
    total('connections_opened_total', () => totals.opened)
    family('connections_closed_total', closedCodes)
    family('handshakes_rejected_total', rejected)
    family('frames_received_total', received)
    family('frames_sent_total', sent)
    total('received_bytes_total', () => totals.receivedBytes)
    total('sent_bytes_total', () => totals.sentBytes)
    family('actions_total', actions)
    family('errors_total', errors)
    total('deliveries_total', () => totals.deliveries)
    total('deliveries_dropped_total', () => source.counters.deliveriesDropped)
    total('slow_consumers_closed_total', () => source.counters.slowConsumersClosed)
    total('floods_closed_total', () => source.counters.floodsClosed)
    total('adapter_errors_total', () => totals.adapterErrors)
    if (shape.history === true) family('recoveries_total', recoveries)
    actionDuration = histogram('action_duration_seconds', buckets.action)
    publishDuration = histogram('publish_duration_seconds', buckets.publish)
    connectionDuration = histogram('connection_duration_seconds', buckets.connection)
    for (const name of shape.handledActions) actionDuration.zero({ action: name })
  } catch (err) {
    removeAll()
    if (err instanceof Error && /already been registered/.test(err.message)) throw new FST_REALTIME_METRICS_CONFLICT(err.message)
    throw err
  }

  const actionLabels = new Map<string, Record<string, string>>()
  for (const name of shape.handledActions) actionLabels.set(name, { action: name })

  return {
    now: () => performance.now(),
    connectionOpened () { totals.opened++ },
    connectionClosed (code, openedAt) {
      closedCodes.add(code >= 4000 && code <= 4999 ? 'app' : code, 1)
      connectionDuration.observe((performance.now() - openedAt) / 1000)
    },
    handshakeRejected (status) { rejected.add(status, 1) },
    bytesReceived (bytes) { totals.receivedBytes += bytes },
    frameReceived (type) { received.add(type, 1) },
    frameSent (frame) {
      if (frame.startsWith(TYPE_FIRST)) sent.add(frame.slice(TYPE_FIRST.length, frame.indexOf('"', TYPE_FIRST.length)), 1)
      totals.sentBytes += Buffer.byteLength(frame)
    },
    delivered (members, bytes) {
      totals.deliveries += members
      totals.sentBytes += members * bytes
      sent.values[sentMessage] += members
    },
    action (name) { actions.add(name, 1) },
    error (code) { errors.add(code, 1) },
    actionDone (name, startedAt) {
      const labels = actionLabels.get(name)
      if (labels !== undefined) actionDuration.observe(labels, (performance.now() - startedAt) / 1000)
    },
    publishDone (startedAt) { publishDuration.observe((performance.now() - startedAt) / 1000) },
    adapterError () { totals.adapterErrors++ },
    recovery (outcome) { recoveries.add(outcome, 1) },
    close: removeAll
  }
}
