/**
 * A connection's inbound frames before dispatch: text only, at most `maxPayload` bytes, then the rate limit. Verdicts
 * resolve in call order, so accepted frames keep their order; a frame over the budget is answered `RATE_LIMITED`,
 * and a sender past twice the budget is closed with 1008.
 */
import type { RawData } from 'ws'
import type { Connection } from './connection.js'
import { CloseCode } from './constants.js'
import { dispatch } from './dispatch.js'
import { parseClientFrame } from './protocol.js'
import { Verdict } from './rate-limit.js'

/** Handles one frame of `connection`'s socket (its `message` event). */
export function receive (connection: Connection, data: RawData, isBinary: boolean): void {
  if (connection.closed) return
  if (isBinary) {
    connection.close(CloseCode.UNSUPPORTED_DATA, 'binary frames are not supported')
    return
  }
  const { options, metrics } = connection.ctx
  const buf = data as Buffer
  if (buf.length > options.maxPayload) {
    // Only reachable when the app registered @fastify/websocket itself with a larger maxPayload.
    connection.close(CloseCode.MESSAGE_TOO_BIG, 'frame too large')
    return
  }
  metrics.bytesReceived(buf.length)
  const text = buf.toString()
  const limiter = options.limiter
  if (limiter === undefined) {
    dispatch(connection, text)
    return
  }
  limiter.check(limiter.perDevice ? connection.deviceId : connection.serial).then((verdict) => {
    if (!connection.open) return
    if (verdict === Verdict.ACCEPT) dispatch(connection, text)
    else if (verdict === Verdict.REJECT) rateLimited(connection, text)
    else flooded(connection)
  }, /* c8 ignore next */ (err: unknown) => connection.log.error({ err }, 'fastify-realtime: rate limiter failed'))
}

/** A frame over the budget: counted, and answered `RATE_LIMITED` with its request id when it has one. */
function rateLimited (connection: Connection, text: string): void {
  const { counters, metrics, options } = connection.ctx
  counters.framesRateLimited++
  const parsed = parseClientFrame(text, options.maxDepth)
  metrics.frameReceived(parsed.ok ? parsed.frame.type : 'invalid')
  connection.error('RATE_LIMITED', 'Too many frames, slow down', parsed.ok ? parsed.frame.id : parsed.error.id)
}

/** A sender past twice the budget: closed with 1008. */
function flooded (connection: Connection): void {
  connection.ctx.counters.floodsClosed++
  connection.log.info('fastify-realtime: flooding past twice the rate limit, closing with 1008')
  connection.close(CloseCode.POLICY_VIOLATION, 'rate limit exceeded')
}
