/**
 * Connection helpers of the Redis adapter: quitting a client whatever its state, and describing a client, a URL or
 * a connection error for messages and logs (never a password).
 */
import type { Redis } from 'ioredis'

/** QUIT, or a plain disconnect when Redis is unreachable (QUIT rejects without an offline queue). Never rejects. */
export async function quit (client: Redis): Promise<void> {
  try {
    await client.quit()
  } catch {
    client.disconnect()
  }
}

/** The URL with its password replaced by `***`, for error messages and logs. */
export function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(unparseable URL)'
  }
}

/** host:port of an ioredis client, for error messages (never its password). */
export function describeClient (client: Redis): string {
  const { host, port, path } = client.options
  return path !== undefined && path !== null && path !== '' ? path : `${host ?? '127.0.0.1'}:${port ?? 6379}`
}

/** An error's system code (ECONNREFUSED, ENOTFOUND...) and message, or a hint for a non-Redis peer. */
export function describe (err: Error): string {
  const code = (err as NodeJS.ErrnoException).code
  if (code !== undefined) return `${code} (${err.message})`
  if (/RESP|Protocol error/i.test(err.message)) return `protocol error, is this port a Redis server? (${err.message})`
  return err.message
}
