/**
 * The `metrics` register option: the structural types of the Prometheus client it takes (prom-client,
 * `@prometheus-io/client`, fastify-metrics' client: no import of any), defaults and validation. A bad value
 * throws `FST_REALTIME_INVALID_OPTION` at register time.
 */
import { FST_REALTIME_INVALID_OPTION } from './errors.js'
import { routePath } from './option-checks.js'

/** The registry calls the plugin uses (a prom-client `Registry`; registries are duck-typed across copies). */
export interface RegistryLike {
  getSingleMetric: (name: string) => unknown
  removeSingleMetric: (name: string) => void
  metrics: () => Promise<string>
  readonly contentType: string
}

/** What the plugin passes to a metric constructor (a subset of prom-client's configuration). */
export interface MetricConfig {
  name: string
  help: string
  labelNames?: readonly string[]
  /** Typed `any[]` so each client's own `Registry` class type fits; the value is always the resolved registry. */
  registers: any[]
  buckets?: number[]
  collect?: () => void
}
/** The counter calls the plugin uses. */
export interface CounterLike { inc: ((labels: Record<string, string>, value?: number) => void) & ((value?: number) => void) }
/** The gauge calls the plugin uses. */
export interface GaugeLike { set: (value: number) => void }
/** The histogram calls the plugin uses. */
export interface HistogramLike {
  observe: ((labels: Record<string, string>, value: number) => void) & ((value: number) => void)
  zero: (labels: Record<string, string>) => void
}

/** The Prometheus client module: `import * as client from 'prom-client'` (or `@prometheus-io/client`). */
export interface PromClientLike {
  Counter: new (config: MetricConfig) => CounterLike
  Gauge: new (config: MetricConfig) => GaugeLike
  Histogram: new (config: MetricConfig) => HistogramLike
  /** The client's global registry, used when `registry` is not given. */
  register: RegistryLike
}

/** Histogram buckets, upper bounds in seconds, strictly increasing. */
export interface MetricsBuckets {
  /** `action_duration_seconds`. Default 0.5 ms to 10 s (10 s is the default handler timeout). */
  action?: number[]
  /** `publish_duration_seconds`. Default 0.1 ms to 2.5 s. */
  publish?: number[]
  /** `connection_duration_seconds`. Default 1 s to 24 h. */
  connection?: number[]
}

/** Option `metrics` of the plugin. Off by default. */
export interface MetricsOptions {
  /** The app's Prometheus client module, e.g. `import * as client from 'prom-client'`, or `app.metrics.client`. */
  client: PromClientLike
  /** Registry the metrics are created in and removed from on close. Default `client.register` (the global one). */
  registry?: RegistryLike
  /** Prefix of every metric name, `^[a-zA-Z_][a-zA-Z0-9_]*$` or `''`. Default `'realtime_'`. */
  prefix?: string
  /** Route serving `registry.metrics()` in the text format, e.g. `'/metrics'`, when the app does not serve it. Default none. */
  route?: string
  /** Histogram buckets in seconds. */
  buckets?: MetricsBuckets
}

/** `MetricsOptions` after defaults and validation. */
export interface ResolvedMetricsOptions {
  client: PromClientLike
  registry: RegistryLike
  prefix: string
  route: string | undefined
  buckets: Required<MetricsBuckets>
}

/** Default prefix of metric names. */
export const DEFAULT_METRICS_PREFIX = 'realtime_'
const DEFAULT_BUCKETS: Required<MetricsBuckets> = {
  action: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  publish: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  connection: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400]
}

/**
 * Applies defaults and validates the `metrics` option; `undefined` or `false` turns metrics off.
 * @throws FST_REALTIME_INVALID_OPTION naming the bad field.
 */
export function resolveMetricsOptions (value: unknown): ResolvedMetricsOptions | undefined {
  if (value === undefined || value === false) return undefined
  if (value === null || typeof value !== 'object') throw new FST_REALTIME_INVALID_OPTION('metrics must be an object { client, registry?, prefix?, route?, buckets? }')
  const { client, registry, prefix, route, buckets } = value as Partial<MetricsOptions>
  if (client === null || typeof client !== 'object' || ['Counter', 'Gauge', 'Histogram'].some((name) => typeof (client as unknown as Record<string, unknown>)[name] !== 'function')) {
    throw new FST_REALTIME_INVALID_OPTION('metrics.client must be a Prometheus client module (import * as client from \'prom-client\'), with Counter, Gauge and Histogram')
  }
  const resolvedRegistry = registry ?? client.register
  if (!isRegistry(resolvedRegistry)) {
    throw new FST_REALTIME_INVALID_OPTION('metrics.registry must be a Prometheus Registry (new client.Registry()); the client has no default register')
  }
  if (prefix !== undefined && (typeof prefix !== 'string' || !/^([a-zA-Z_][a-zA-Z0-9_]*)?$/.test(prefix))) {
    throw new FST_REALTIME_INVALID_OPTION(`metrics.prefix must match ^[a-zA-Z_][a-zA-Z0-9_]*$ or be '', got ${JSON.stringify(prefix)}`)
  }
  if (route !== undefined) routePath(route, 'metrics.route')
  if (buckets !== undefined && (buckets === null || typeof buckets !== 'object')) {
    throw new FST_REALTIME_INVALID_OPTION('metrics.buckets must be an object { action?, publish?, connection? }')
  }
  return {
    client,
    registry: resolvedRegistry,
    prefix: prefix ?? DEFAULT_METRICS_PREFIX,
    route,
    buckets: {
      action: bucketList(buckets?.action, DEFAULT_BUCKETS.action, 'action'),
      publish: bucketList(buckets?.publish, DEFAULT_BUCKETS.publish, 'publish'),
      connection: bucketList(buckets?.connection, DEFAULT_BUCKETS.connection, 'connection')
    }
  }
}

function isRegistry (value: unknown): value is RegistryLike {
  const registry = value as Partial<RegistryLike> | null | undefined
  return typeof registry === 'object' && registry !== null && typeof registry.getSingleMetric === 'function' &&
    typeof registry.removeSingleMetric === 'function' && typeof registry.metrics === 'function' &&
    typeof registry.contentType === 'string'
}

function bucketList (value: unknown, fallback: number[], name: string): number[] {
  if (value === undefined) return fallback
  if (!Array.isArray(value) || value.length === 0 ||
    !value.every((bound, i) => typeof bound === 'number' && Number.isFinite(bound) && bound > 0 && (i === 0 || bound > (value[i - 1] as number)))) {
    throw new FST_REALTIME_INVALID_OPTION(`metrics.buckets.${name} must be a non-empty array of strictly increasing positive seconds`)
  }
  return [...value] as number[]
}
