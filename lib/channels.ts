/**
 * The local registry: which members of this node listen to which adapter topic. It subscribes the node to a
 * topic when the first local member arrives and unsubscribes when the last one leaves (reference counting),
 * and fans each delivery out to the topic's members. It knows nothing of frames or sockets.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { MessageHandler, RealtimeAdapter } from './adapters/adapter.js'
import { textFrame } from './frame.js'

/**
 * Anything that can receive a delivery: a connection. `deliver` gets the message payload and the complete
 * WebSocket frame carrying it (both built once per message, shared by every member); it must not throw.
 */
export interface Member {
  deliver: (payload: Buffer, frame: Buffer) => void
}

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
    // One handler per topic, not per message: a delivery serialised once at the publishing node is turned into
    // bytes and framed once per node, and the same Buffer is written to every member.
    const handler: MessageHandler = (message) => {
      if (members.size === 0) return
      const payload = Buffer.from(message)
      const frame = textFrame(payload)
      for (const member of members) member.deliver(payload, frame)
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
