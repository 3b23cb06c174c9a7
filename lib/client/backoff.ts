/**
 * Reconnect delays: exponential backoff with full jitter above a floor.
 */

/**
 * The delay before reconnect attempt `attempt` (1 for the first retry), in ms: a uniformly random integer in
 * `[minDelay, min(maxDelay, minDelay * 2 ** attempt)]`. The window doubles with each attempt until it reaches
 * `maxDelay`; the whole window is jittered ("full jitter") so clients dropped together spread their retries, and
 * no retry comes sooner than `minDelay`.
 *
 * @param attempt reconnect attempt number, an integer >= 1
 * @param minDelay shortest delay in ms (the client's default is 500)
 * @param maxDelay longest delay in ms, >= minDelay (the client's default is 30000)
 * @param random a source of numbers in [0, 1); defaults to `Math.random`
 * @returns the delay in ms
 */
export function backoffDelay (attempt: number, minDelay: number, maxDelay: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxDelay, minDelay * 2 ** Math.max(1, attempt))
  return Math.min(ceiling, Math.floor(minDelay + random() * (ceiling - minDelay + 1)))
}
