/**
 * The WebSocket implementation behind the client: the one given in options, else the global `WebSocket`
 * (every browser; Node >= 22), else the `ws` package, loaded lazily so that no Node-only module is imported
 * by browser bundles.
 */

/** WebSocket `readyState` of an open socket. */
export const OPEN = 1

/** The part of the WHATWG `WebSocket` interface the client uses. Both browsers' `WebSocket` and `ws` satisfy it. */
export interface SocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number
  send: (data: string) => void
  close: (code?: number, reason?: string) => void
  addEventListener: (type: 'open' | 'message' | 'close' | 'error', listener: (event: any) => void) => void
}

/** A WebSocket constructor: `new WebSocket(url)`, like the browser's or `ws`'s. */
export type WebSocketConstructor = new (url: string) => SocketLike

// A non-literal specifier: bundlers (esbuild, webpack, vite) leave this import alone, so `ws` never reaches a
// browser bundle; the branch only runs where there is no global WebSocket, i.e. in Node < 22.
const WS_MODULE = 'ws'

/**
 * Resolves the WebSocket constructor: `given`, else `globalThis.WebSocket`, else `ws`'s export.
 * Synchronous when no import is needed.
 * @throws (as a rejection) when there is no global WebSocket and `ws` cannot be imported.
 */
export function loadWebSocket (given: WebSocketConstructor | undefined): WebSocketConstructor | Promise<WebSocketConstructor> {
  if (given !== undefined) return given
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
  if (global !== undefined) return global
  return import(/* webpackIgnore: true */ /* @vite-ignore */ WS_MODULE).then(
    (mod: { WebSocket?: WebSocketConstructor, default?: WebSocketConstructor }) => {
      const ctor = mod.WebSocket ?? mod.default
      if (typeof ctor !== 'function') throw new TypeError('the "ws" module exports no WebSocket')
      return ctor
    },
    (err: unknown) => {
      throw new TypeError('No WebSocket implementation: this runtime has no global WebSocket and "ws" could not be imported ' +
        '(npm i ws, or pass options.WebSocket)', { cause: err })
    })
}

/**
 * The HTTP status that refused the upgrade, read from an `error` event, or `undefined` when unknown.
 * `ws` reports it as "Unexpected server response: 401"; browsers and undici do not expose it.
 */
export function refusedStatus (event: unknown): number | undefined {
  const message = (event as { message?: unknown } | null)?.message
  if (typeof message !== 'string') return undefined
  const match = /Unexpected server response: (\d{3})/.exec(message)
  return match === null ? undefined : Number(match[1])
}
