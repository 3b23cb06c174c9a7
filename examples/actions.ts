/**
 * The chat example's actions (examples/server.ts registers them): the relay `chat.message`, the handled `chat.send`
 * (stores the message, publishes its stored form `chat.stored`, replies with its id), the handled `chat.history`
 * (the channel's recent messages from the plugin's history) and the channel-less `rooms.recent`.
 */
import Type from 'typebox'
import type { FastifyInstance } from 'fastify'
import { defineAction, RealtimeError } from '../lib/index.js'

const Text = Type.String({ minLength: 1, maxLength: 4096 })
/** The relay action clients send, and the form the server publishes for a stored message. */
export const ChatMessage = Type.Object({ text: Text }, { additionalProperties: false })
export const ChatStored = Type.Object({ id: Type.String(), at: Type.Integer(), from: Type.String(), text: Text })
/** What `app.realtime.history()` returns: the stream position and the stored messages, oldest first. */
export const HistoryReply = Type.Object({
  epoch: Type.String(),
  offset: Type.Integer(),
  messages: Type.Array(Type.Object({
    offset: Type.Integer(), action: Type.String(), payload: Type.Unknown(), from: Type.Union([Type.String(), Type.Null()])
  }))
})

/**
 * The example's action map. `realtime` returns the app's `app.realtime` (available once the plugin is registered,
 * which is before any action runs).
 */
export function chatActions (realtime: () => FastifyInstance['realtime']) {
  // A small in-process store: the last messages of each channel (a database in a real app).
  const store = new Map<string, Array<{ id: string, at: number, from: string, text: string }>>()
  let lastId = 0
  return {
    // A plain relay: existing clients keep working unchanged.
    'chat.message': ChatMessage,
    // What the server publishes for a stored message.
    'chat.stored': ChatStored,
    // Handled: store, publish the stored form, reply with its server id and time.
    'chat.send': defineAction({
      payload: Type.Object({ text: Text }, { additionalProperties: false }),
      reply: Type.Object({ id: Type.String(), at: Type.Integer() }),
      async handler ({ connection, channel, payload }) {
        if (channel === undefined) throw new RealtimeError('CHANNEL_REQUIRED', 'chat.send needs a channel')
        const message = { id: `m${++lastId}`, at: Date.now(), from: connection.deviceId, text: payload.text }
        const list = store.get(channel) ?? []
        list.push(message)
        store.set(channel, list.slice(-100))
        await realtime().publish(channel, 'chat.stored', message)
        return { id: message.id, at: message.at }
      }
    }),
    // Handled, on a joined channel: its recent messages from the plugin's history (the page shows them on join, and
    // reloads them when a re-join was not recovered).
    'chat.history': defineAction({
      payload: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })) }, { additionalProperties: false }),
      reply: HistoryReply,
      handler: ({ channel, payload }) => {
        if (channel === undefined) throw new RealtimeError('CHANNEL_REQUIRED', 'chat.history needs a channel')
        return realtime().history(channel, { limit: payload.limit ?? 20 })
      }
    }),
    // Handled and channel-less: a request/response call listing the channels with recent messages.
    'rooms.recent': defineAction({
      payload: Type.Object({}),
      reply: Type.Array(Type.Object({ channel: Type.String(), messages: Type.Integer(), lastAt: Type.Integer() })),
      handler: () => [...store].map(([channel, list]) => ({ channel, messages: list.length, lastAt: list.at(-1)!.at }))
    })
  }
}

/** The action map's type, for the typed client (`createClient<ChatActions>(url)`). */
export type ChatActions = ReturnType<typeof chatActions>

declare module '../lib/index.js' {
  interface RealtimeActions {
    'chat.message': typeof ChatMessage
    'chat.stored': typeof ChatStored
  }
}
