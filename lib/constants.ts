/**
 * Constants of fastify-realtime: close codes, default limits (with units) and name patterns.
 * Everything tunable lives here so handlers never carry magic numbers.
 */

/** WebSocket close codes used by the server (RFC 6455 §7.4.1). */
export const CloseCode = {
  /** Normal closure. */
  NORMAL: 1000,
  /** The server is shutting down (`app.close()`). */
  GOING_AWAY: 1001,
  /** A binary frame was received: the protocol is JSON text only. */
  UNSUPPORTED_DATA: 1003,
  /** Policy violation (e.g. flooding). */
  POLICY_VIOLATION: 1008,
  /** A frame larger than `maxPayload`. */
  MESSAGE_TOO_BIG: 1009,
  /** An unexpected server error. */
  INTERNAL_ERROR: 1011,
  /** Try again later: a slow consumer past `maxBufferedBytes`, or the adapter unreachable at connect time. */
  TRY_AGAIN_LATER: 1013
} as const

/** Lowest application close code (RFC 6455 §7.4.2: 4000-4999 are private use); the default of `disconnect`. */
export const APPLICATION_CLOSE_MIN = 4000
/** Highest application close code. */
export const APPLICATION_CLOSE_MAX = 4999
/** Longest close reason, in bytes of UTF-8 (RFC 6455 §5.5: a control frame payload is at most 125 bytes). */
export const MAX_CLOSE_REASON_BYTES = 123

/** Default route path of the WebSocket endpoint. */
export const DEFAULT_PATH = '/ws'
/** Default largest accepted frame, in bytes (64 KiB). */
export const DEFAULT_MAX_PAYLOAD = 64 * 1024
/** Default longest run of an action handler before the sender is answered `TIMEOUT`, in ms. */
export const DEFAULT_HANDLER_TIMEOUT = 10_000
/** Default largest number of channels one connection may join. */
export const DEFAULT_MAX_CHANNELS_PER_CONNECTION = 100
/** Default interval between heartbeat pings, in ms. A connection that misses one pong is terminated. */
export const DEFAULT_HEARTBEAT_INTERVAL = 30_000
/** Default time given to a close handshake before the socket is destroyed, in ms. */
export const DEFAULT_CLOSE_TIMEOUT = 1000
/** Default longest time an upgrade may take, from the TCP connection to the 101, in ms. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000
/** Default deepest nesting of arrays/objects accepted in a client frame. */
export const DEFAULT_MAX_DEPTH = 32
/** Default longest wait for the backend when subscribing while it is unreachable, in ms. */
export const DEFAULT_SUBSCRIBE_TIMEOUT = 2000
/** Default bound of unsent data per connection before it counts as a slow consumer, in bytes (1 MiB). */
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024
/** Default inbound frames accepted per connection per window. */
export const DEFAULT_RATE_LIMIT_MAX = 5000
/** Default rate-limit window, in ms. */
export const DEFAULT_RATE_LIMIT_WINDOW = 1000
/** Default prefix of Redis channel names used by the Redis adapter. */
export const DEFAULT_REDIS_PREFIX = 'realtime:'

/** A deviceId: 1 to 64 characters of `A-Z a-z 0-9 _ -`. */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$'
/** A channel name: 1 to 128 characters of `A-Z a-z 0-9 : _ . -` (never a Redis glob pattern). */
export const CHANNEL_PATTERN = '^[A-Za-z0-9:_.\\-]{1,128}$'
/** An action name, same alphabet as channels, 1 to 128 characters. */
export const ACTION_PATTERN = '^[A-Za-z0-9:_.\\-]{1,128}$'
/** Longest string request id, in characters. */
export const MAX_ID_LENGTH = 64

/** Prefix of adapter topics that carry a channel's deliveries. */
export const CHANNEL_TOPIC_PREFIX = 'channel:'
/** Prefix of adapter topics that carry direct messages to one deviceId. */
export const DEVICE_TOPIC_PREFIX = 'device:'

/**
 * Default time a topic's stream position (epoch and top offset) is kept after its last publish, in ms (30 days,
 * as Centrifugo's `HistoryMetaTTL`). Past it the stream starts over under a new epoch.
 */
export const DEFAULT_HISTORY_META_TTL = 30 * 24 * 60 * 60 * 1000
/**
 * Default bound on how long the members of a node that died without cleaning up stay counted, in ms. Each node
 * heartbeats every fifth of it and counts as dead after three fifths without one.
 */
export const DEFAULT_PRESENCE_TIMEOUT = 15_000

/**
 * Redis Cluster adapter: interval between liveness probes of a healthy shard, in ms. A probe SPUBLISHes a token on
 * a probe channel in one of the shard's slots and expects it back on this node's sharded subscriber connection;
 * every shard is also probed right after each slot map refresh.
 */
export const CLUSTER_PROBE_INTERVAL = 2000
/** Redis Cluster adapter: interval between probes of a shard that is down or whose subscription is stale, in ms. */
export const CLUSTER_PROBE_RETRY = 200
/** Redis Cluster adapter: longest wait for a probe's round trip, in ms. */
export const CLUSTER_PROBE_TIMEOUT = 3000
/**
 * Redis Cluster adapter: delay of the second slot map refresh that follows every refresh ioredis makes, in ms.
 * ioredis reads the map from one random node, which may not know yet of a failover or migration that just
 * happened; the second read sees the settled map, and ioredis then subscribes the moved channels on their owner.
 */
export const CLUSTER_REFRESH_CONFIRM_DELAY = 1000

/** Default smallest message, in bytes of payload, that permessage-deflate compresses (smaller ones go plain, as ws does). */
export const DEFAULT_DEFLATE_THRESHOLD = 1024
/** Default zlib compression level of permessage-deflate (0-9): 1 is the fastest, most of the gain on JSON. */
export const DEFAULT_DEFLATE_LEVEL = 1
