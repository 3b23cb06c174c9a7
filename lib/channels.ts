/**
 * The local registry: which members of this node listen to which adapter topic. It subscribes the node to a
 * topic when the first local member arrives and unsubscribes when the last one leaves (reference counting),
 * and fans each delivery out to the topic's members. It knows nothing of frames or sockets.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { MessageHandler, RealtimeAdapter } from './adapters/adapter.js'
import { DEVICE_TOPIC_PREFIX } from './constants.js'
import { type ControlCommand, controlCommand, decodeEnvelope } from './envelope.js'
import { textFrame } from './frame.js'

/**
 * Anything that can receive a delivery: a connection. `deliver` gets the message payload and the complete
 * WebSocket frame carrying it (both built once per message, shared by every member); it must not throw.
 * `control` applies a control command received on the member's device topic; it must not throw.
 */
export interface Member {
  readonly deviceId: string
  deliver: (payload: Buffer, frame: Buffer) => void
  control: (command: ControlCommand) => void
}

const OPEN_BRACE = 123

interface TopicEntry {
  members: Set<Member>
  /** Members waiting for the adapter subscription; they hold the topic alive too. */
  pending: number
  ready: Promise<void>
  handler: MessageHandler
}

export class ChannelRegistry {
  readonly #topics = new Map<string, TopicEntry>()
  readonly #adapter: RealtimeAdapter
  readonly #log: FastifyBaseLogger

  constructor (adapter: RealtimeAdapter, log: FastifyBaseLogger) {
    this.#adapter = adapter
    this.#log = log
  }

  /**
   * Adds `member` to `topic`, subscribing the node first if it is the topic's first member. Resolves once the
   * adapter subscription is active, so anything published afterwards reaches the member. Rejects with the
   * adapter's error when the subscription fails; the member is then not added.
   */
  async add (topic: string, member: Member): Promise<void> {
    let entry = this.#topics.get(topic)
    if (entry === undefined) entry = this.#create(topic)
    entry.pending++
    try {
      await entry.ready
    } catch (err) {
      entry.pending--
      if (this.#isUnused(entry) && this.#topics.get(topic) === entry) this.#topics.delete(topic)
      throw err
    }
    entry.pending--
    entry.members.add(member)
  }

  /** Removes `member` from `topic`; the node unsubscribes when no member is left. Never throws. */
  remove (topic: string, member: Member): void {
    const entry = this.#topics.get(topic)
    if (entry === undefined) return
    entry.members.delete(member)
    if (!this.#isUnused(entry)) return
    this.#topics.delete(topic)
    this.#adapter.unsubscribe(topic, entry.handler).catch((err: unknown) => {
      this.#log.warn({ err, topic }, 'fastify-realtime: adapter unsubscribe failed')
    })
  }

  /** Number of topics this node is subscribed to (or subscribing). */
  get topicCount (): number {
    return this.#topics.size
  }

  /** Topic names this node holds, for diagnostics and tests. */
  topics (): string[] {
    return [...this.#topics.keys()]
  }

  #create (topic: string): TopicEntry {
    const members = new Set<Member>()
    const isDeviceTopic = topic.startsWith(DEVICE_TOPIC_PREFIX)
    const log = this.#log
    // One handler per topic, not per message: a delivery serialised once at the publishing node is turned into
    // bytes and framed once per node, and the same Buffer is written to every member. Extended messages
    // (envelope.ts) are decoded once here too, never per member.
    const handler: MessageHandler = (message) => {
      if (members.size === 0) return
      if (message.charCodeAt(0) === OPEN_BRACE) {
        const payload = Buffer.from(message)
        const frame = textFrame(payload)
        for (const member of members) member.deliver(payload, frame)
        return
      }
      const envelope = decodeEnvelope(message)
      if (envelope === undefined) {
        log.warn({ topic }, 'fastify-realtime: dropped an adapter message that is neither a frame nor an envelope')
        return
      }
      const header = envelope.header
      if (header.c !== undefined) {
        const command = isDeviceTopic ? controlCommand(header) : undefined
        if (command === undefined) {
          log.warn({ topic, command: header.c }, 'fastify-realtime: dropped an invalid control command')
          return
        }
        for (const member of members) member.control(command)
        return
      }
      if (envelope.frame.charCodeAt(0) !== OPEN_BRACE) return
      const payload = Buffer.from(envelope.frame)
      const frame = textFrame(payload)
      const except = header.e
      for (const member of members) if (member.deviceId !== except) member.deliver(payload, frame)
    }
    const entry: TopicEntry = { members, pending: 0, handler, ready: this.#adapter.subscribe(topic, handler) }
    // The promise is awaited by add(); this guard only keeps an early rejection from being "unhandled".
    entry.ready.catch(() => {})
    this.#topics.set(topic, entry)
    return entry
  }

  #isUnused (entry: TopicEntry): boolean {
    return entry.members.size === 0 && entry.pending === 0
  }
}
