/**
 * Origin check of the WebSocket handshake (cross-site WebSocket hijacking defence, RFC 6455 §10.2).
 */
import type { FastifyRequest } from 'fastify'
import { FST_REALTIME_INVALID_OPTION } from './errors.js'

/** Exact origins (`'https://app.example.com'`) or a predicate. Requests without an `Origin` header always pass. */
export type AllowedOrigins = readonly string[] | ((origin: string, request: FastifyRequest) => boolean)

/** A compiled check: true when the request may upgrade. */
export type OriginCheck = (request: FastifyRequest) => boolean

/**
 * Builds the check. Default (no option): the Origin's host:port must equal the `Host` header's (scheme ignored,
 * default ports 80/443 dropped; `localhost` and `127.0.0.1` differ; `Origin: null` is refused).
 * @throws FST_REALTIME_INVALID_OPTION for anything but an array of strings or a function.
 */
export function createOriginCheck (allowed: AllowedOrigins | undefined): OriginCheck {
  if (allowed === undefined) {
    return (request) => {
      const origin = request.headers.origin
      if (origin === undefined) return true
      const host = request.headers.host
      return host !== undefined && hostOf(origin) === normalizeHost(host)
    }
  }
  if (typeof allowed === 'function') {
    return (request) => {
      const origin = request.headers.origin
      return origin === undefined || allowed(origin, request) === true
    }
  }
  if (!Array.isArray(allowed) || !allowed.every((o) => typeof o === 'string')) {
    throw new FST_REALTIME_INVALID_OPTION('allowedOrigins must be an array of origins or a function')
  }
  const set = new Set(allowed.map((o) => o.toLowerCase().replace(/\/$/, '')))
  return (request) => {
    const origin = request.headers.origin
    return origin === undefined || set.has(origin.toLowerCase())
  }
}

function hostOf (origin: string): string | undefined {
  try {
    const url = new URL(origin)
    return url.host === '' ? undefined : normalizeHost(url.host)
  } catch {
    return undefined // "null" and garbage
  }
}

function normalizeHost (host: string): string {
  return host.toLowerCase().replace(/:(80|443)$/, '')
}
