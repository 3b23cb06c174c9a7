/**
 * The client's requests (join, leave, publish, rpc) from call to reply: the queue of calls waiting for a connection,
 * the table of frames sent and awaiting their reply, ids and timeouts. No socket here: the client sends.
 */
import type { ActionFrame, JoinFrame, LeaveFrame } from '../protocol.js'
import { RealtimeError } from './errors.js'

/**
 * An `action` frame as the client sends it (protocol v1.1): `channel` is absent for a channel-less call of a handled
 * action (`rpc`), and `exceptSelf: true` is present only when the publish asked for it.
 */
export type ActionRequestFrame = Omit<ActionFrame, 'id'>

/** A request frame as the client sends it: always with a numeric id. */
export type RequestFrame = (Omit<JoinFrame, 'id'> | Omit<LeaveFrame, 'id'> | ActionRequestFrame) & { id: number }

/** One call awaiting its reply. */
export interface PendingRequest {
  readonly frame: RequestFrame
  /** A re-join the client sends by itself after a reconnect: no caller awaits it. */
  readonly internal: boolean
  /** Called with the `result` of an `ack` (undefined for joins, leaves and acks without a result). */
  readonly resolve: (result: unknown) => void
  readonly reject: (err: RealtimeError) => void
  timer: ReturnType<typeof setTimeout> | undefined
}

/** A request frame before it gets its id. */
export type FrameBody = Omit<JoinFrame, 'id'> | Omit<LeaveFrame, 'id'> | ActionRequestFrame

/**
 * Queue and in-flight table. A request lives in exactly one of them until it is settled: by its reply,
 * by its timeout (`TIMEOUT`, counted from the call), by a disconnect (`DISCONNECTED`, published actions only)
 * or by `rejectAll` (the client closed).
 */
export class Requests {
  readonly #queue: PendingRequest[] = []
  readonly #sent = new Map<number, PendingRequest>()
  readonly #timeout: number
  readonly #queueSize: number
  #nextId = 1

  /**
   * @param timeout ms from the call to the reply before a request rejects with `TIMEOUT`
   * @param queueSize most calls kept in the queue; more reject with `QUEUE_FULL`
   */
  constructor (timeout: number, queueSize: number) {
    this.#timeout = timeout
    this.#queueSize = queueSize
  }

  /** Number of calls waiting for a connection. */
  get queued (): number {
    return this.#queue.length
  }

  /**
   * Creates a request with a fresh id and starts its timeout; `resolve` / `reject` are called once, when it is
   * settled. The caller then either writes its frame and calls `sent`, or calls `enqueue`.
   */
  create (body: FrameBody, internal: boolean, resolve: (result: unknown) => void, reject: (err: RealtimeError) => void): PendingRequest {
    const frame = { ...body, id: this.#nextId++ } as RequestFrame
    const request: PendingRequest = { frame, internal, resolve, reject, timer: undefined }
    request.timer = setTimeout(() => {
      if (!this.#remove(request)) return
      request.reject(new RealtimeError('TIMEOUT', `No reply to ${frame.type} within ${this.#timeout} ms`, { id: frame.id }))
    }, this.#timeout)
    return request
  }

  /** Keeps a request until the next connection. Rejects it with `QUEUE_FULL` (and returns false) when full. */
  enqueue (request: PendingRequest): boolean {
    if (this.#queue.length >= this.#queueSize) {
      this.#settle(request, new RealtimeError('QUEUE_FULL',
        `Not connected and ${this.#queueSize} calls are already queued`, { id: request.frame.id }))
      return false
    }
    this.#queue.push(request)
    return true
  }

  /** Records that a request's frame was written to the socket. */
  sent (request: PendingRequest): void {
    this.#sent.set(request.frame.id, request)
  }

  /** Removes and returns every queued request, in call order, to be sent now. */
  drain (): PendingRequest[] {
    return this.#queue.splice(0)
  }

  /**
   * Settles the sent request answering to `id`: rejects it with `error` when given, else resolves it with `result`.
   * @returns false when no sent request has that id (timed out already, or not ours)
   */
  reply (id: unknown, error?: RealtimeError, result?: unknown): boolean {
    if (typeof id !== 'number') return false
    const request = this.#sent.get(id)
    if (request === undefined) return false
    this.#sent.delete(id)
    this.#settle(request, error, result)
    return true
  }

  /**
   * The connection dropped. Sent joins and leaves go back to the front of the queue, in their send order, to be
   * sent again once (they are idempotent); sent actions (publish, rpc) reject with `DISCONNECTED` (the server may
   * have run them); internal re-joins are dropped (the next connection re-joins again).
   */
  disconnected (): void {
    const again: PendingRequest[] = []
    for (const request of this.#sent.values()) {
      if (request.internal) this.#settle(request)
      else if (request.frame.type === 'action') {
        this.#settle(request, new RealtimeError('DISCONNECTED',
          'The connection dropped before the action was acknowledged; it may or may not have taken effect',
          { id: request.frame.id }))
      } else again.push(request)
    }
    this.#sent.clear()
    this.#queue.unshift(...again)
  }

  /** Rejects every queued and sent request with `error` (the client closed). */
  rejectAll (error: RealtimeError): void {
    const all = [...this.#sent.values(), ...this.#queue]
    this.#sent.clear()
    this.#queue.length = 0
    for (const request of all) this.#settle(request, error)
  }

  #remove (request: PendingRequest): boolean {
    if (this.#sent.get(request.frame.id) === request) return this.#sent.delete(request.frame.id)
    const i = this.#queue.indexOf(request)
    if (i === -1) return false
    this.#queue.splice(i, 1)
    return true
  }

  #settle (request: PendingRequest, error?: RealtimeError, result?: unknown): void {
    clearTimeout(request.timer)
    if (error === undefined) request.resolve(result)
    else request.reject(error)
  }
}
