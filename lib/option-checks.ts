/**
 * Checks shared by every register-time option of the server side (plugin options, rateLimit, redisAdapter).
 * The client keeps its own (it throws TypeError: its browser bundle must not pull in @fastify/error).
 */
import { FST_REALTIME_INVALID_OPTION } from './errors.js'

/**
 * Returns `value`, or `fallback` when it is undefined.
 * @throws FST_REALTIME_INVALID_OPTION unless `value` is a safe integer >= `min`; `name` is the option's path.
 */
export function integerOption (value: unknown, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new FST_REALTIME_INVALID_OPTION(`${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  }
  return value
}

/**
 * Returns `path`.
 * @throws FST_REALTIME_INVALID_OPTION unless it is a string starting with "/" without query, fragment or spaces.
 */
export function routePath (path: unknown, name: string): string {
  if (typeof path !== 'string' || !/^\/[^\s?#]*$/.test(path)) {
    throw new FST_REALTIME_INVALID_OPTION(`${name} must be a string starting with "/" without query or spaces, got ${JSON.stringify(path)}`)
  }
  return path
}

/**
 * Returns `value`, or the first of `allowed` when it is undefined.
 * @throws FST_REALTIME_INVALID_OPTION unless `value` is one of `allowed`.
 */
export function oneOf<T extends string> (value: unknown, allowed: readonly T[], name: string): T {
  if (value === undefined) return allowed[0]!
  if (!allowed.includes(value as T)) throw new FST_REALTIME_INVALID_OPTION(`${name} must be one of ${allowed.join(', ')}`)
  return value as T
}

/**
 * Returns `value` (a function or undefined).
 * @throws FST_REALTIME_INVALID_OPTION when it is defined and not a function.
 */
export function optionalFunction<F> (value: F | undefined, name: string): F | undefined {
  if (value !== undefined && typeof value !== 'function') throw new FST_REALTIME_INVALID_OPTION(`${name} must be a function`)
  return value
}
