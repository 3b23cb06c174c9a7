/**
 * Static types of the client: payloads derived from the server's action map, handler signatures, the client's
 * state and the details of its lifecycle events.
 */
import type { Static, TSchema } from 'typebox'
import type { ActionEntry, ActionMap } from '../actions.js'
import type { RealtimeError } from './errors.js'

/**
 * One entry of the server's action map, as the client reads it (the server's `ActionEntry`): a TypeBox schema of
 * the payload (a relay action), or `{ payload, reply?, handler? }` (handled with `handler`, else a relay). The
 * client never calls `handler`: it only reads whether the entry has one.
 */
export type ClientActionDefinition = ActionEntry

/**
 * A map of action name -> definition: the same object the server registers as `actions` (the server's
 * `ActionMap`), imported as a type.
 */
export type ClientActionMap = ActionMap

/** The action names of the map `A`. */
export type ActionName<A> = keyof A & string

/** The payload type of one definition (distributes over unions). */
type PayloadOf<D> = D extends { payload: infer P extends TSchema } ? Static<P> : D extends TSchema ? Static<D> : never

/**
 * True for a handled definition: one whose type has a `handler` property, required (an object literal with a
 * handler) or optional (the type a helper such as the server's `defineAction` returns).
 */
type IsHandled<D> = D extends { payload: TSchema } ? ('handler' extends keyof D ? true : false) : false

/** The result type of one definition: `Static<reply>` for a handled action, `unknown` without reply, else `undefined`. */
type ResultOf<D> = IsHandled<D> extends true
  ? D extends { reply?: infer R } ? ([Exclude<R, undefined>] extends [TSchema] ? Static<Exclude<R, undefined>> : unknown) : unknown
  : undefined

/**
 * The payload type of action `K` of the map `A`: the static type of its TypeBox schema (of `payload` in the
 * object form).
 */
export type ActionPayload<A, K extends keyof A> = PayloadOf<A[K]>

/**
 * What `publish` and `rpc` resolve with for action `K` of the map `A`: `Static<reply>` for a handled action that
 * declares `reply`, `unknown` for a handled action without `reply`, `undefined` for a relay action (and `unknown`
 * for every action of an untyped client).
 */
export type ActionResult<A, K extends keyof A> = string extends keyof A ? unknown : ResultOf<A[K]>

/**
 * The actions of the map `A` that `rpc` may call: those defined with a `handler` (every action name for an untyped
 * client).
 */
export type HandledActionName<A> = string extends keyof A
  ? string
  : { [K in ActionName<A>]: IsHandled<A[K]> extends true ? K : never }[ActionName<A>]

/**
 * The options `publish` accepts for action `K` of the map `A`: `PublishOptions` for a relay action; none for a
 * handled action, whose handler decides who receives what (the server answers `exceptSelf` on it with
 * `BAD_REQUEST`).
 */
export type PublishOptionsOf<A, K extends keyof A> = string extends keyof A
  ? PublishOptions
  : IsHandled<A[K]> extends true ? never : PublishOptions

/** Options of one `publish` of a relay action. */
export interface PublishOptions {
  /**
   * When true, no connection of this client's deviceId (this one or another tab of the same device) receives the
   * message; every other member does, on every node. Sent as `"exceptSelf": true` in the `action` frame (protocol
   * v1.1; relay actions only). For typing indicators and cursors. Default false.
   */
  exceptSelf?: boolean
}

/** What a channel handler receives besides the payload. */
export interface MessageMeta<K extends string = string> {
  /** The channel the message was published to. */
  channel: string
  /** The action name. */
  action: K
  /** The publisher's deviceId, or `null` when the server published it (`fastify.realtime.publish`). */
  from: string | null
  /**
   * Channels with history (protocol v1.2): the message's offset in the channel's stream (+1 per message, the same
   * on every node); `undefined` on channels without history.
   */
  offset?: number
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
 * - `closed`: terminal (`close()`, a close code the `isTerminalClose` option calls final, by default 1003 / 1008 / 1009
 *   and 4000-4999, or HTTP 401 / 403 in Node); calls reject `CLOSED`.
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

/** Detail of the `joined` and `left` events. */
export interface MembershipDetail {
  /** The channel added to (`joined`) or removed from (`left`) `client.channels`. */
  channel: string
  /**
   * true when the server decided it: an unsolicited `joined` / `left` frame (`app.realtime.join` / `leave`,
   * `connection.join` / `leave`, `authenticate`'s `channels`), or a re-join refused after a reconnect;
   * false for the client's own `join()` / `leave()`.
   */
  byServer: boolean
}

/**
 * A position in a channel's stream (channels with history, protocol v1.2): `offset` (an integer, 0 before the first
 * message) in the stream incarnation `epoch` (an opaque string; a new one means the stored stream was lost).
 */
export interface StreamPosition {
  offset: number
  epoch: string
}

/**
 * What `join()` resolves with, and the detail of the `rejoined` event. On a channel without history only `channel`
 * is set.
 */
export interface JoinResult {
  /** The channel joined. */
  channel: string
  /** Channels with history: the stream's epoch. */
  epoch?: string
  /** Channels with history: the channel's latest offset when the join took effect (0 for an empty stream). */
  offset?: number
  /**
   * Channels with history, when the client held a position for the channel (a re-join after a reconnect, or a
   * join of a channel already joined): true when continuity held, i.e. every message after the held position was
   * delivered or follows (replayed by the server, each exactly once, in order, before live ones); false when
   * messages were missed and cannot be replayed (a new epoch, or trimmed or expired): reload the channel's state.
   * `undefined` for a first join and on channels without history.
   */
  recovered?: boolean
}

/** Detail of the `reset` event: continuity was lost while joined; deliveries continue after this position. */
export interface ResetDetail extends StreamPosition {
  /** The channel whose messages were missed: reload its state. */
  channel: string
}

/** A member of a presence channel: a device with at least one connection in it, on any node. */
export interface PresenceMember {
  deviceId: string
  /** What the server's `authenticate` returned as `presenceInfo`, when it did. */
  info?: unknown
}

/** Detail of the `presence` event: the members of a presence channel changed (or a snapshot arrived). */
export interface PresenceDetail {
  channel: string
  /** Every member now (one per deviceId, however many connections it has), in arrival order. */
  members: PresenceMember[]
  /** Members added by this change (for a snapshot: against the list held before it, if any). */
  joins: PresenceMember[]
  /** Members removed by this change (for a snapshot: against the list held before it, if any). */
  leaves: PresenceMember[]
  /** true for the snapshot the server sends after each `joined` (first join and every re-join), false for a diff. */
  snapshot: boolean
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
  /**
   * A reconnect attempt is scheduled in `delay` ms (sooner when `reconnect()` is called or, in a browser, the
   * window fires `online`).
   */
  reconnecting: CustomEvent<ReconnectingDetail>
  /** A channel was added to `channels`: the server confirmed a `join()`, or joined this connection itself. */
  joined: CustomEvent<MembershipDetail>
  /** A channel was removed from `channels`: the server confirmed a `leave()`, or removed this connection itself. */
  left: CustomEvent<MembershipDetail>
  /**
   * A channel of `channels` was joined again on a new connection (after a reconnect), once per channel and
   * connection. On a channel with history `recovered` says whether any message was lost across the reconnect.
   */
  rejoined: CustomEvent<JoinResult>
  /**
   * Channels with history: the server lost continuity while joined (`reset` frame: messages missed that the stream
   * no longer holds). Reload the channel's state; deliveries continue after the given position.
   */
  reset: CustomEvent<ResetDetail>
  /** Presence channels: a snapshot arrived (after each join and re-join) or a diff changed the members. */
  presence: CustomEvent<PresenceDetail>
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
