/**
 * Inbound frame rate limiting with rate-limiter-flexible: a memory store per node by default, or a Redis store
 * that shares one budget per deviceId across every node.
 */
import type { Redis } from 'ioredis'
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible'
import { DEFAULT_RATE_LIMIT_MAX, DEFAULT_RATE_LIMIT_WINDOW } from './constants.js'
import { FST_REALTIME_INVALID_OPTION } from './errors.js'
import { integerOption } from './option-checks.js'

/** Options of the inbound rate limit. */
export interface RateLimitOptions {
  /** Frames accepted per window. Default 5000. A connection sending more than twice this in one window is closed with 1008. */
  max?: number
  /** Window length in ms. Default 1000. */
  timeWindow?: number
  /**
   * Share the budget of a deviceId (all its connections, all nodes) through Redis instead of one budget per
   * connection. If Redis fails, a per-node memory budget of the same size takes over until it is back.
   */
  perDevice?: { redis: Redis, keyPrefix?: string }
}

/** Outcome of one frame against the limit: process it, answer RATE_LIMITED, or close with 1008. */
export const Verdict = { ACCEPT: 0, REJECT: 1, CLOSE: 2 } as const
export type Verdict = typeof Verdict[keyof typeof Verdict]

/** A per-frame limiter. `check(key)` resolves in call order, so frames keep their order. */
export interface FrameLimiter {
  /** Whether keys are deviceIds (shared budget) rather than connection ids. */
  readonly perDevice: boolean
  check: (key: string | number) => Promise<Verdict>
}

/** Builds the limiter, or `undefined` when `options` is `false`. @throws FST_REALTIME_INVALID_OPTION */
export function createFrameLimiter (options: RateLimitOptions | false | undefined): FrameLimiter | undefined {
  if (options === false) return undefined
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new FST_REALTIME_INVALID_OPTION('rateLimit must be an object or false')
  }
  const max = integerOption(options?.max, DEFAULT_RATE_LIMIT_MAX, 'rateLimit.max', 1)
  const timeWindow = integerOption(options?.timeWindow, DEFAULT_RATE_LIMIT_WINDOW, 'rateLimit.timeWindow (ms)', 1)
  const base = { points: max, duration: timeWindow / 1000 }
  // A memory store needs no key prefix: without one the key (a number per connection) is used as is, no string is
  // built per frame.
  let limiter: RateLimiterAbstract = new RateLimiterMemory({ ...base, keyPrefix: '' })
  const perDevice = options?.perDevice
  if (perDevice !== undefined) {
    if (perDevice === null || typeof perDevice.redis?.eval !== 'function') {
      throw new FST_REALTIME_INVALID_OPTION('rateLimit.perDevice.redis must be an ioredis client')
    }
    limiter = new RateLimiterRedis({
      ...base,
      storeClient: perDevice.redis,
      keyPrefix: perDevice.keyPrefix ?? 'realtime:rl',
      insuranceLimiter: new RateLimiterMemory({ ...base, keyPrefix: '' })
    })
  }
  const closeAbove = 2 * max
  return {
    perDevice: perDevice !== undefined,
    check (key) {
      return limiter.consume(key).then(accept, (res: unknown) => {
        if (res instanceof RateLimiterRes) return res.consumedPoints > closeAbove ? Verdict.CLOSE : Verdict.REJECT
        return Verdict.ACCEPT // a store error with no insurance: fail open rather than drop traffic
      })
    }
  }
}

function accept (): Verdict {
  return Verdict.ACCEPT
}
