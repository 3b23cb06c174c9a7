/**
 * Server commands for one deviceId on every node (`app.realtime.join` / `leave` / `disconnect`): sent as control
 * envelopes on the device's existing adapter topic (`device:<deviceId>`, to which every connection of the deviceId
 * is already subscribed, so no new subscription per device is needed), and applied by each node to its local
 * connections of that deviceId. Never forwarded to a client as a `message`.
 */
import type { Connection } from './connection.js'
import { APPLICATION_CLOSE_MAX, APPLICATION_CLOSE_MIN, DEVICE_TOPIC_PREFIX, MAX_CLOSE_REASON_BYTES } from './constants.js'
import { type ControlCommand, encodeEnvelope } from './envelope.js'
import { FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_INVALID_CLOSE, FST_REALTIME_INVALID_DEVICE_ID } from './errors.js'
import { serverJoin, serverLeave } from './membership.js'
import { isChannelName, isDeviceId } from './protocol.js'

/** Options of `app.realtime.disconnect`. */
export interface DisconnectOptions {
  /** Close code, an application code 4000-4999. Default 4000. */
  code?: number
  /** Close reason, at most 123 bytes of UTF-8. Default `''`. */
  reason?: string
}

/** The adapter topic and message of a control command. @throws FST_REALTIME_INVALID_DEVICE_ID, FST_REALTIME_INVALID_CHANNEL, FST_REALTIME_INVALID_CLOSE */
export function controlMessage (deviceId: string, command: ControlCommand): [topic: string, message: string] {
  if (!isDeviceId(deviceId)) throw new FST_REALTIME_INVALID_DEVICE_ID(String(deviceId))
  if (command.c === 'disconnect') checkClose(command.code, command.reason)
  else if (!isChannelName(command.channel)) throw new FST_REALTIME_INVALID_CHANNEL(String(command.channel))
  return [DEVICE_TOPIC_PREFIX + deviceId, encodeEnvelope(command)]
}

/** The disconnect command for `options` (defaults applied). @throws FST_REALTIME_INVALID_CLOSE */
export function disconnectCommand (options: DisconnectOptions = {}): ControlCommand {
  const { code = APPLICATION_CLOSE_MIN, reason = '' } = options
  checkClose(code, reason)
  return { c: 'disconnect', code, reason }
}

function checkClose (code: unknown, reason: unknown): void {
  if (typeof code !== 'number' || !Number.isInteger(code) || code < APPLICATION_CLOSE_MIN || code > APPLICATION_CLOSE_MAX) {
    throw new FST_REALTIME_INVALID_CLOSE(`code must be an integer from ${APPLICATION_CLOSE_MIN} to ${APPLICATION_CLOSE_MAX}, got ${JSON.stringify(code)}`)
  }
  if (typeof reason !== 'string' || Buffer.byteLength(reason) > MAX_CLOSE_REASON_BYTES) {
    throw new FST_REALTIME_INVALID_CLOSE(`reason must be a string of at most ${MAX_CLOSE_REASON_BYTES} bytes`)
  }
}

/** Applies a command received on the device topic to one local connection of that deviceId. Never throws. */
export function applyControl (connection: Connection, command: ControlCommand): void {
  if (command.c === 'join') {
    serverJoin(connection, command.channel).catch((err: unknown) => {
      connection.log.warn({ err, channel: command.channel }, 'fastify-realtime: server-side join failed, adapter did not subscribe')
    })
  } else if (command.c === 'leave') {
    serverLeave(connection, command.channel)
  } else {
    connection.close(command.code, command.reason)
  }
}
