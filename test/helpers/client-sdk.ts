/**
 * Helpers for tests of the client SDK (`lib/client`).
 */
import { RealtimeError } from '../../lib/client/index.js'

/**
 * The detail of the next `type` event. (Node's `events.once` cannot be used: it takes anything with an `on`
 * method for an EventEmitter, and the client has one.)
 */
export async function nextEvent<D> (client: EventTarget, type: string): Promise<D> {
  return new Promise((resolve) => {
    client.addEventListener(type, (event) => resolve((event as CustomEvent<D>).detail), { once: true })
  })
}

/** The `RealtimeError` a promise rejects with; any other outcome fails the test. */
export async function rejection (promise: Promise<unknown>): Promise<RealtimeError> {
  try {
    await promise
  } catch (err) {
    if (err instanceof RealtimeError) return err
    throw err
  }
  throw new Error('expected a rejection')
}
