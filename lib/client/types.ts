/**
 * Static types of the client: payloads derived from the server's action map, handler signatures, the client's
 * state and the details of its lifecycle events.
 */
import type { Static, TSchema } from 'typebox'
import type { ActionMap } from '../options.js'
import type { RealtimeError } from './errors.js'

/** A map of action name -> TypeBox schema of its payload: the same object the server registers as `actions`. */
export type ClientActionMap = ActionMap

/** The action names of the map `A`. */
export type ActionName<A> = keyof A & string

/** The payload type of action `K` of the map `A`: the static type of its TypeBox schema. */
export type ActionPayload<A, K extends keyof A> = A[K] extends TSchema ? Static<A[K]> : never

/** What a channel handler receives besides the payload. */
export interface MessageMeta<K extends string = string> {
  /** The channel the message was published to. */
  channel: string
  /** The action name. */
  action: K
  /** The publisher's deviceId, or `null` when the server published it (`fastify.realtime.publish`). */
  from: string | null
}

/** What a direct-message handler receives besides the payload: like `MessageMeta`, without a channel. */
export interface DirectMessageMeta<K extends string = string> {
  /** Always `undefined`: a direct message (`fastify.realtime.sendToDevice`) has no channel. */
  channel: undefined
  /** The action name. */
  action: K
  /** The sender's deviceId, or `null` when the server sent it. */
  from: string | null
}

/** A handler of deliveries of one action on one channel. */
export type MessageHandler<P, K extends string = string> = (payload: P, meta: MessageMeta<K>) => void
/** A handler of direct messages of one action. */
export type DirectMessageHandler<P, K extends string = string> = (payload: P, meta: DirectMessageMeta<K>) => void

/**
 * The client's connection state:
 * - `connecting`: a socket is being opened (first time or a retry), until the server's `welcome`;
 * - `open`: welcomed; calls are sent at once;
 * - `reconnecting`: the connection dropped, waiting out the backoff delay before the next attempt;
 * - `closed`: terminal (`close()`, close code 1003 / 1008 / 1009, or HTTP 401 / 403 in Node); calls reject `CLOSED`.
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed'

/** Detail of the `open` event. */
export interface OpenDetail {
  /** The deviceId the server welcomed this connection with. */
  deviceId: string
  /** false for the first `open`, true after a reconnect. */
  reconnected: boolean
}

/** Detail of the `close` event. */
export interface CloseDetail {
  /** The WebSocket close code (1006 when the connection failed or dropped without a close frame). */
  code: number
  /** The close reason sent by the peer, or a description of the failure. */
  reason: string
  /** true when the client will retry (a `reconnecting` event follows); false when the client is closed for good. */
  willReconnect: boolean
}

/** Detail of the `reconnecting` event. */
export interface ReconnectingDetail {
  /** Reconnect attempt number since the last `open`, from 1. */
  attempt: number
  /** Delay before this attempt, in ms. */
  delay: number
}

/** The lifecycle events of the client, dispatched through its `EventTarget` interface. */
export interface RealtimeClientEventMap {
  /** The server welcomed the connection; joined channels were re-joined and queued calls sent. */
  open: CustomEvent<OpenDetail>
  /** The socket closed (or failed to open). */
  close: CustomEvent<CloseDetail>
  /** A reconnect attempt is scheduled. */
  reconnecting: CustomEvent<ReconnectingDetail>
  /**
   * Something failed that no promise reports: a socket error (`CONNECTION_FAILED`), an error reply without a
   * pending request, a failed re-join after a reconnect, a bad server frame, a throwing handler.
   */
  error: CustomEvent<RealtimeError>
}

/** An event listener: a function or an object with `handleEvent` (declared here so no DOM lib is needed). */
export type Listener<E> = ((this: EventTarget, event: E) => void) | { handleEvent: (event: E) => void }

/** Options of `addEventListener`, as the DOM's `AddEventListenerOptions` (a boolean means `capture`). */
export type ListenerOptions = boolean | { capture?: boolean, once?: boolean, passive?: boolean, signal?: AbortSignal }
