/**
 * fastify-realtime/client: an isomorphic (browser and Node) client of the fastify-realtime protocol v1.2 (it
 * speaks to v1 servers too, as long as it uses no v1.1 feature: `rpc`, `exceptSelf`, handled actions; v1.2's
 * recovery and presence work with the channels the server configures so).
 *
 * ```ts
 * import { createClient } from 'fastify-realtime/client'
 * const client = createClient<typeof actions>('ws://127.0.0.1:3000/ws')
 * client.addEventListener('open', (e) => showStatus(`welcome ${e.detail.deviceId}`))
 * await client.join('lobby')
 * client.on('lobby', 'chat.message', (payload, { from }) => render(from, payload.text))
 * await client.publish('lobby', 'chat.message', { text: 'hi' })
 * ```
 * Only type imports reach outside this folder (plus the pure `constants.js`), so a browser bundle of this entry
 * holds no server code.
 */
export { createClient, RealtimeClient } from './client.js'
export { RealtimeError, ClientErrorCode, type RealtimeErrorCode, type RealtimeErrorInit } from './errors.js'
export {
  type ClientOptions, isTerminalCloseCode, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_DELAY, DEFAULT_MIN_DELAY, DEFAULT_QUEUE_SIZE, DEFAULT_REQUEST_TIMEOUT
} from './options.js'
export { backoffDelay } from './backoff.js'
export type { SocketLike, WebSocketConstructor } from './socket.js'
export type {
  ActionName, ActionPayload, ActionResult, ClientActionDefinition, ClientActionMap, ClientState, CloseDetail,
  DirectMessageHandler, DirectMessageMeta, HandledActionName, JoinResult, MembershipDetail, MessageHandler, MessageMeta,
  OpenDetail, PresenceDetail, PresenceMember, PublishOptions, PublishOptionsOf, ReconnectingDetail, RealtimeClientEventMap,
  ResetDetail, StreamPosition
} from './types.js'
export type { WireErrorCode, ValidationDetail, RequestId } from '../protocol.js'
