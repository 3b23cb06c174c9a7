/**
 * The client's delivery handlers: `on(channel, action)` and `onDirect(action)` subscriptions, keyed by channel and
 * action, and the dispatch of `message` frames to them.
 */
import type { MessageFrame } from '../protocol.js'

type AnyHandler = (payload: any, meta: any) => void

/** Handlers by `channel\naction` (an empty channel for direct messages: channel names are never empty). */
export class Handlers {
  readonly #byKey = new Map<string, Set<AnyHandler>>()

  /**
   * Adds `handler` for `action` on `channel` (`undefined`: direct messages).
   * @returns a function that removes it (idempotent)
   */
  add (channel: string | undefined, action: string, handler: AnyHandler): () => void {
    const key = `${channel ?? ''}\n${action}`
    let handlers = this.#byKey.get(key)
    if (handlers === undefined) {
      handlers = new Set()
      this.#byKey.set(key, handlers)
    }
    handlers.add(handler)
    return () => {
      handlers.delete(handler)
      if (handlers.size === 0 && this.#byKey.get(key) === handlers) this.#byKey.delete(key)
    }
  }

  /**
   * Calls every handler of the frame's channel and action with `(payload, { channel, action, from, offset? })`, in the order
   * they were added. A handler that throws is reported to `onError`; the others still run.
   */
  deliver (frame: MessageFrame, onError: (err: unknown) => void): void {
    const handlers = this.#byKey.get(`${frame.channel ?? ''}\n${frame.action}`)
    if (handlers === undefined) return
    const meta = frame.offset === undefined
      ? { channel: frame.channel, action: frame.action, from: frame.from ?? null }
      : { channel: frame.channel, action: frame.action, from: frame.from ?? null, offset: frame.offset }
    for (const handler of [...handlers]) {
      try {
        handler(frame.payload, meta)
      } catch (err) {
        onError(err)
      }
    }
  }
}
