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
