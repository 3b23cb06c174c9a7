/**
 * The catalogue of fastify-realtime's Prometheus metrics (names without the prefix, type, labels, help) and the
 * closed sets their label values come from. docs/observability.md and the Grafana dashboard are tested against it.
 */

/** One metric of the catalogue. */
export interface MetricDefinition {
  type: 'gauge' | 'counter' | 'histogram'
  /** Label names (a histogram's `le` not included). */
  labels: readonly string[]
  help: string
  /** Exists only with history enabled. */
  history?: true
}

/** Every metric, by name without the prefix (default prefix `realtime_`). Durations in seconds, sizes in bytes. */
export const METRICS = {
  connections: { type: 'gauge', labels: [], help: 'Open WebSocket connections on this node.' },
  channels: { type: 'gauge', labels: [], help: 'Channels with at least one member on this node.' },
  adapter_topics: { type: 'gauge', labels: [], help: 'Adapter topics (channels and deviceIds) this node is subscribed to.' },
  publishes_inflight: { type: 'gauge', labels: [], help: 'Publishes handed to the adapter and not yet settled.' },
  adapter_up: { type: 'gauge', labels: [], help: '1 when the adapter reaches its backend, else 0.' },
  connections_opened_total: { type: 'counter', labels: [], help: 'WebSocket connections opened (after the 101).' },
  connections_closed_total: { type: 'counter', labels: ['code'], help: 'Connections closed, by close code (4000-4999: app; undocumented codes: other).' },
  handshakes_rejected_total: { type: 'counter', labels: ['status'], help: 'Upgrade requests answered with an HTTP status instead of 101.' },
  frames_received_total: { type: 'counter', labels: ['type'], help: 'Client frames parsed (handled or answered RATE_LIMITED), by frame type (invalid: not a valid envelope).' },
  frames_sent_total: { type: 'counter', labels: ['type'], help: 'Server frames sent, by frame type (message: one per member reached).' },
  received_bytes_total: { type: 'counter', labels: [], help: 'Payload bytes of client text frames received.' },
  sent_bytes_total: { type: 'counter', labels: [], help: 'Payload bytes of server frames sent, deliveries included.' },
  actions_total: { type: 'counter', labels: ['action'], help: 'Action frames received for a registered action, by action name.' },
  errors_total: { type: 'counter', labels: ['code'], help: 'Error frames sent, by wire code (application codes: app).' },
  deliveries_total: { type: 'counter', labels: [], help: 'Deliveries written: one per local member reached by a message.' },
  deliveries_dropped_total: { type: 'counter', labels: [], help: 'Deliveries skipped for a slow consumer (slowConsumer: drop).' },
  slow_consumers_closed_total: { type: 'counter', labels: [], help: 'Connections closed with 1013 as slow consumers.' },
  floods_closed_total: { type: 'counter', labels: [], help: 'Connections closed with 1008 for flooding past twice the rate limit.' },
  adapter_errors_total: { type: 'counter', labels: [], help: 'Adapter publish, subscribe or unsubscribe calls that failed.' },
  recoveries_total: { type: 'counter', labels: ['outcome'], help: 'Recoveries on join, by outcome.', history: true },
  action_duration_seconds: { type: 'histogram', labels: ['action'], help: 'Handled actions: from the handler call to its answer (reply, error or TIMEOUT), in seconds.' },
  publish_duration_seconds: { type: 'histogram', labels: [], help: 'Adapter publish round trip, in seconds.' },
  connection_duration_seconds: { type: 'histogram', labels: [], help: 'Lifetime of closed connections, in seconds.' }
} as const satisfies Record<string, MetricDefinition>

/** A metric name without the prefix. */
export type MetricName = keyof typeof METRICS

/** Client frame types counted by `frames_received_total` (`invalid`: a frame that did not parse as an envelope). */
export const RECEIVED_FRAME_TYPES = ['join', 'leave', 'action', 'invalid'] as const
/** Server frame types counted by `frames_sent_total`. */
export const SENT_FRAME_TYPES = ['welcome', 'joined', 'left', 'ack', 'error', 'message'] as const
/** The `code` label values of `connections_closed_total` besides `app` (4000-4999) and `other`. */
export const CLOSE_CODE_LABELS = [1000, 1001, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1013] as const
/** The `status` label values of `handshakes_rejected_total` besides `other`. */
export const HANDSHAKE_STATUS_LABELS = [400, 401, 403, 426, 429, 503] as const
/** The `outcome` label values of `recoveries_total`. */
export const RECOVERY_OUTCOMES = ['recovered', 'not_recovered'] as const
