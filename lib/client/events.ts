/**
 * The client's typed `EventTarget`: `addEventListener` / `removeEventListener` typed by `RealtimeClientEventMap`,
 * and the `CustomEvent` dispatch of those events.
 */
import type { Listener, ListenerOptions, RealtimeClientEventMap } from './types.js'

/** An `EventTarget` whose listeners are typed by the client's events (see `RealtimeClientEventMap`). */
export class ClientEvents extends EventTarget {
  /**
   * Adds a listener: `open`, `close`, `reconnecting`, `joined`, `left`, `rejoined`, `reset`, `presence` or `error`
   * (see `RealtimeClientEventMap`).
   */
  override addEventListener<K extends keyof RealtimeClientEventMap> (type: K, listener: Listener<RealtimeClientEventMap[K]> | null, options?: ListenerOptions): void
  override addEventListener (type: string, listener: Listener<Event> | null, options?: ListenerOptions): void
  override addEventListener (type: string, listener: any, options?: ListenerOptions): void {
    super.addEventListener(type, listener, options)
  }

  /** Removes a listener added with `addEventListener`. */
  override removeEventListener<K extends keyof RealtimeClientEventMap> (type: K, listener: Listener<RealtimeClientEventMap[K]> | null, options?: boolean | { capture?: boolean }): void
  override removeEventListener (type: string, listener: Listener<Event> | null, options?: boolean | { capture?: boolean }): void
  override removeEventListener (type: string, listener: any, options?: boolean | { capture?: boolean }): void {
    super.removeEventListener(type, listener, options)
  }

  /** Dispatches the event `type` as a `CustomEvent` with `detail`, synchronously. */
  protected emit<K extends keyof RealtimeClientEventMap> (type: K, detail: RealtimeClientEventMap[K]['detail']): void {
    this.dispatchEvent(new CustomEvent(type, { detail }))
  }
}
