/**
 * Per-node reference counting of backend subscriptions, shared by the Redis adapters (single Redis and Cluster):
 * one backend subscription per backend channel while the node has at least one local handler for it, released
 * after the last handler leaves.
 */
import type { MessageHandler } from './adapter.js'

interface Entry { handlers: Set<MessageHandler>, ready: Promise<unknown> }

/** What the adapter does on the backend for one channel. */
export interface TopicRefsBackend {
  /** Subscribes `key` (one channel per call); rejects when it could not (the error is passed to the caller). */
  subscribe: (key: string) => Promise<void>
  /**
   * Releases `key` (one channel per call, never the argument-less form). Called after the last handler left (or
   * after a failed subscribe whose handlers are all gone, in case the backend subscribed late). Should not reject.
   */
  release: (key: string) => Promise<void>
  /** True once the adapter is closed: nothing is released any more (closing releases everything). */
  closed: () => boolean
}

/** The local handlers of each subscribed backend channel. */
export interface TopicRefs {
  /**
   * The handlers of `key`, or undefined when none. Hot path (every delivery): one map lookup, no allocation.
   * The set is live: do not keep it.
   */
  handlers: (key: string) => Set<MessageHandler> | undefined
  /**
   * Adds `handler` to `key`; the first handler subscribes it on the backend, later ones share that subscription
   * and wait for it. Rejects with the subscription's error (the handler is then removed, and the channel released
   * when it was the last).
   */
  add: (key: string, handler: MessageHandler) => Promise<void>
  /**
   * Removes `handler` from `key`. After the last one: waits for a subscription still in flight (or it would revive
   * the channel after the release), then releases it unless it was added again meanwhile or the adapter closed.
   * Resolves when done; never rejects unless `release` does.
   */
  remove: (key: string, handler: MessageHandler) => Promise<void>
  /** The channels with handlers. */
  keys: () => IterableIterator<string>
  /** Number of channels with handlers. */
  size: () => number
  /** Forgets every channel (on close; the caller releases them on the backend if it must). */
  clear: () => void
}

/** Creates the reference counts of one adapter over `backend`. */
export function topicRefs (backend: TopicRefsBackend): TopicRefs {
  const topics = new Map<string, Entry>()

  return {
    handlers: (key) => topics.get(key)?.handlers,

    async add (key, handler) {
      let entry = topics.get(key)
      if (entry === undefined) {
        entry = { handlers: new Set(), ready: backend.subscribe(key) }
        topics.set(key, entry)
      }
      entry.handlers.add(handler)
      try {
        await entry.ready
      } catch (err) {
        entry.handlers.delete(handler)
        if (entry.handlers.size === 0 && topics.get(key) === entry) {
          topics.delete(key)
          if (!backend.closed()) backend.release(key).catch(() => {})
        }
        throw err
      }
    },

    async remove (key, handler) {
      const entry = topics.get(key)
      if (entry === undefined || !entry.handlers.delete(handler)) return
      if (entry.handlers.size > 0) return
      topics.delete(key)
      await entry.ready.catch(() => {})
      if (topics.has(key) || backend.closed()) return
      await backend.release(key)
    },

    keys: () => topics.keys(),
    size: () => topics.size,
    clear: () => { topics.clear() }
  }
}
