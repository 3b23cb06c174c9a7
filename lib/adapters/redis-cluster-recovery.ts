/**
 * History catch-up of the Redis Cluster adapter. Pub/sub is at-most-once: while a shard is down or its sharded
 * subscriptions are stale, messages of its channels may not reach this node. Each time a shard becomes up again
 * after the adapter started (a failover, a killed master replaced by its replica, stale subscriptions healed),
 * this node's channels in its slots are subscribed again (a no-op where they still are; the adapter's callback also
 * has its presence members rewritten at the next heartbeat), then the
 * `history.onReconnect` listener is called so the plugin reads what was missed from the streams. Shards coming up
 * together (one probe round) are reported once; more coming up meanwhile give one more call after it.
 */
import type { FastifyBaseLogger } from 'fastify'

/** The catch-up of one cluster adapter: told when shards come up, it re-subscribes and calls the reconnect listener. */
export interface ShardRecovery {
  /** A shard (`host:port` of its master) became up. Ignored until `start()` and after `stop()`. */
  shardUp: (key: string) => void
  /** Sets the one listener (`history.onReconnect`). */
  onReconnect: (listener: () => void) => void
  /** The adapter is ready: shards coming up from now on are recoveries. */
  start: () => void
  /** The adapter closes: no more calls. */
  stop: () => void
}

/**
 * `resubscribe(shards)` SSUBSCRIBEs again this node's channels owned by those masters; it must settle within a
 * bound and never reject.
 */
export function shardRecovery (resubscribe: (shards: Set<string>) => Promise<void>, log: () => FastifyBaseLogger | undefined): ShardRecovery {
  const pending = new Set<string>()
  let listener: (() => void) | undefined
  let running: Promise<void> | undefined
  let started = false
  let stopped = false

  async function run (): Promise<void> {
    // Let shards coming up in the same probe round join this call.
    await new Promise((resolve) => setImmediate(resolve))
    while (pending.size > 0) {
      const shards = new Set(pending)
      pending.clear()
      await resubscribe(shards)
      if (stopped) return
      try {
        listener?.()
      } catch (err) {
        log()?.error({ err }, 'fastify-realtime: history reconnect listener threw')
      }
    }
  }

  return {
    shardUp (key) {
      if (!started || stopped) return
      pending.add(key)
      running ??= run().finally(() => { running = undefined })
    },
    onReconnect (fn) { listener = fn },
    start () { started = true },
    stop () {
      stopped = true
      pending.clear()
    }
  }
}
