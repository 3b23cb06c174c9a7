/**
 * Register options of the plugin: their types, defaults and validation. A bad option throws
 * `FST_REALTIME_INVALID_OPTION` at register time, never later.
 */
import type { FastifyRequest } from 'fastify'
import type { TSchema } from 'typebox'
import { Compile, type Validator } from 'typebox/compile'
import { isAdapter, type RealtimeAdapter } from './adapters/adapter.js'
import { memoryAdapter } from './adapters/memory.js'
import type { RealtimeConnection } from './connection.js'
import {
  DEFAULT_CLOSE_TIMEOUT, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_CHANNELS_PER_CONNECTION, DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_PAYLOAD, DEFAULT_PATH
} from './constants.js'
import { FST_REALTIME_INVALID_OPTION } from './errors.js'
import { isActionName, isSchema } from './protocol.js'

/** A map of action name -> TypeBox schema of its payload. */
export type ActionMap = { [name: string]: TSchema }

/**
 * What `authenticate` returns: any identity object, exposed as `connection.auth`. When it carries a `deviceId`,
 * the connection gets that deviceId and a client asking for another one is refused with 403.
 */
export type AuthResult = { deviceId?: string } & Record<string, unknown>

/** Options of `fastify.register(realtimePlugin, options)`. */
export interface RealtimePluginOptions<A extends { [K in keyof A]: TSchema } = ActionMap> {
  /** Route path of the WebSocket endpoint. Default `'/ws'`. */
  path?: string
  /** Action name -> TypeBox schema of its payload. Names match `^[A-Za-z0-9:_.-]{1,128}$`. Default `{}`. */
  actions?: A
  /** The pub/sub adapter. Default `memoryAdapter()` (one node). */
  adapter?: RealtimeAdapter
  /**
   * Runs before the 101, after the query is validated. Return an identity (exposed as `connection.auth`);
   * throw to refuse: an error whose `statusCode` is 403 gives 403, anything else 401. No upgrade happens.
   */
  authenticate?: (request: FastifyRequest) => AuthResult | undefined | Promise<AuthResult | undefined>
  /** Called for each join; anything but `true` refuses it with a `FORBIDDEN` error reply (a throw: `INTERNAL`, logged). */
  authorizeJoin?: (connection: RealtimeConnection, channel: string) => boolean | Promise<boolean>
  /** Largest accepted frame in bytes; a larger one closes the connection with 1009. Default 65536 (64 KiB). */
  maxPayload?: number
  /** Most channels one connection may join; more get a `LIMIT_EXCEEDED` error reply. Default 100. */
  maxChannelsPerConnection?: number
  /** Heartbeat ping interval in ms; a connection that has not answered the previous ping is terminated. 0 disables. Default 30000. */
  heartbeatInterval?: number
  /** Time in ms a close handshake may take before the socket is destroyed. Default 1000. */
  closeTimeout?: number
  /** Deepest array/object nesting accepted in a client frame; deeper gets `BAD_REQUEST`. Default 32. */
  maxDepth?: number
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  path: string
  actions: Map<string, Validator>
  adapter: RealtimeAdapter
  authenticate: RealtimePluginOptions['authenticate']
  authorizeJoin: RealtimePluginOptions['authorizeJoin']
  maxPayload: number
  maxChannelsPerConnection: number
  heartbeatInterval: number
  closeTimeout: number
  maxDepth: number
}

/** Applies defaults and validates every option. @throws FST_REALTIME_INVALID_OPTION */
export function resolveOptions (opts: RealtimePluginOptions<any>): ResolvedOptions {
  if (opts === null || typeof opts !== 'object') throw new FST_REALTIME_INVALID_OPTION('options must be an object')
  const path = opts.path ?? DEFAULT_PATH
  if (typeof path !== 'string' || !/^\/[^\s?#]*$/.test(path)) {
    throw new FST_REALTIME_INVALID_OPTION(`path must be a string starting with "/" without query or spaces, got ${JSON.stringify(path)}`)
  }
  const adapter = opts.adapter ?? memoryAdapter()
  if (!isAdapter(adapter)) {
    throw new FST_REALTIME_INVALID_OPTION('adapter must implement subscribe, unsubscribe, publish and close (see RealtimeAdapter)')
  }
  return {
    path,
    actions: compileActions(opts.actions ?? {}),
    adapter,
    authenticate: optionalFunction(opts.authenticate, 'authenticate'),
    authorizeJoin: optionalFunction(opts.authorizeJoin, 'authorizeJoin'),
    maxPayload: count(opts.maxPayload, DEFAULT_MAX_PAYLOAD, 'maxPayload', 1),
    maxChannelsPerConnection: count(opts.maxChannelsPerConnection, DEFAULT_MAX_CHANNELS_PER_CONNECTION, 'maxChannelsPerConnection', 1),
    heartbeatInterval: count(opts.heartbeatInterval, DEFAULT_HEARTBEAT_INTERVAL, 'heartbeatInterval', 0),
    closeTimeout: count(opts.closeTimeout, DEFAULT_CLOSE_TIMEOUT, 'closeTimeout', 1),
    maxDepth: count(opts.maxDepth, DEFAULT_MAX_DEPTH, 'maxDepth', 1)
  }
}

function compileActions (actions: unknown): Map<string, Validator> {
  if (actions === null || typeof actions !== 'object' || Array.isArray(actions)) {
    throw new FST_REALTIME_INVALID_OPTION('actions must be an object of action name -> TypeBox schema')
  }
  const compiled = new Map<string, Validator>()
  for (const [name, schema] of Object.entries(actions)) {
    if (!isActionName(name)) {
      throw new FST_REALTIME_INVALID_OPTION(`action name "${name}" must match ^[A-Za-z0-9:_.-]{1,128}$`)
    }
    if (!isSchema(schema)) {
      throw new FST_REALTIME_INVALID_OPTION(`actions["${name}"] must be a TypeBox schema (e.g. Type.Object({...}))`)
    }
    try {
      compiled.set(name, Compile(schema))
    } catch (err) {
      throw new FST_REALTIME_INVALID_OPTION(`actions["${name}"] could not be compiled: ${(err as Error).message}`)
    }
  }
  return compiled
}

function optionalFunction<F> (value: F | undefined, name: string): F | undefined {
  if (value !== undefined && typeof value !== 'function') throw new FST_REALTIME_INVALID_OPTION(`${name} must be a function`)
  return value
}

function count (value: unknown, fallback: number, name: string, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new FST_REALTIME_INVALID_OPTION(`${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`)
  }
  return value
}
