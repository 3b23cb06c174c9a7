/**
 * The application's lifecycle hooks of a connection (`onConnect`, `onJoin`, `onLeave`, `onDisconnect`): each may be
 * sync or async; a throw or rejection is logged and changes nothing else. Hooks of one connection run one after
 * the other in event order (an async hook delays the next hook of that connection, never its frames).
 */
import type { Connection } from './connection.js'

/**
 * Runs `call` (one hook invocation) for `connection` after the hooks of the connection still pending. Never throws.
 * A synchronous hook with nothing pending runs at once, without a promise.
 */
export function runHook (connection: Connection, name: string, call: () => unknown): void {
  const pending = connection.hooks
  if (pending !== undefined) {
    chain(connection, pending.then(() => invoke(connection, name, call)))
    return
  }
  const result = invoke(connection, name, call)
  if (result !== undefined) chain(connection, result)
}

/** Calls the hook; returns a promise only while an async hook is pending. */
function invoke (connection: Connection, name: string, call: () => unknown): Promise<void> | undefined {
  let result: unknown
  try {
    result = call()
  } catch (err) {
    failed(connection, name, err)
    return undefined
  }
  if (result === null || typeof result !== 'object' || typeof (result as PromiseLike<unknown>).then !== 'function') return undefined
  return Promise.resolve(result).then(noop, (err: unknown) => failed(connection, name, err))
}

function chain (connection: Connection, pending: Promise<void>): void {
  const tail: Promise<void> = pending.finally(() => {
    if (connection.hooks === tail) connection.hooks = undefined
  })
  connection.hooks = tail
}

function failed (connection: Connection, name: string, err: unknown): void {
  connection.log.error({ err, hook: name }, `fastify-realtime: ${name} hook failed`)
}

function noop (): void {}
