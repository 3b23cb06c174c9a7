/**
 * The verdict of an authorization hook (`authorizeJoin`, `authorizePublish`) for one request of a connection.
 */
import type { Connection } from './connection.js'
import type { RequestId } from './protocol.js'

/**
 * Awaits an authorization hook: `true` passes; anything else answers `FORBIDDEN`, a throw or rejection `INTERNAL`
 * (logged, its message never sent). Resolves with whether the request may go on.
 */
export async function authorized (connection: Connection, hook: () => boolean | Promise<boolean>, id: RequestId | undefined): Promise<boolean> {
  let allowed: boolean
  try {
    allowed = (await hook()) === true
  } catch (err) {
    connection.internal(err, id)
    return false
  }
  if (!allowed) connection.error('FORBIDDEN', 'Not allowed', id)
  return allowed
}
