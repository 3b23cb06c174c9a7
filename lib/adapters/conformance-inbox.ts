/**
 * Test utilities shared by the sections of the adapter conformance suite: an inbox that collects what a handler
 * receives, and unique topic names.
 */
import type { MessageHandler } from './adapter.js'
import type { StreamPosition } from './history.js'

/** Collects messages (and their positions) of one handler and lets a test await a count of them. */
export interface Inbox {
  handler: MessageHandler
  messages: string[]
  /** The position given with each message, `undefined` for a message without one. */
  positions: Array<StreamPosition | undefined>
  /** Resolves when `count` messages arrived; rejects after `timeout` ms. */
  until: (count: number) => Promise<string[]>
}

/** Creates an inbox whose `until` fails after `timeout` ms. */
export function inbox (timeout: number): Inbox {
  const messages: string[] = []
  const positions: Array<StreamPosition | undefined> = []
  let waiter: { count: number, resolve: () => void } | undefined
  return {
    messages,
    positions,
    handler (message, position) {
      messages.push(message)
      positions.push(position === undefined ? undefined : { offset: position.offset, epoch: position.epoch })
      if (waiter !== undefined && messages.length >= waiter.count) waiter.resolve()
    },
    async until (count) {
      if (messages.length < count) {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          new Promise<void>((resolve) => { waiter = { count, resolve } }),
          new Promise<void>((_resolve, reject) => {
            timer = setTimeout(() => reject(new Error(`expected ${count} messages within ${timeout} ms, got ${messages.length}`)), timeout)
          })
        ]).finally(() => { clearTimeout(timer); waiter = undefined })
      }
      return messages
    }
  }
}

let seq = 0
/** A topic name no other test (or process) uses. */
export function uniqueTopic (name: string): string {
  return `conformance:${name}:${process.pid}:${++seq}`
}

/** Polls `read` every 20 ms until `done` holds for its value, failing after `timeout` ms; returns that value. */
export async function pollUntil<T> (read: () => Promise<T>, done: (value: T) => boolean, timeout: number, what: string): Promise<T> {
  const deadline = Date.now() + timeout
  for (;;) {
    const value = await read()
    if (done(value)) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}; last value: ${JSON.stringify(value)}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
