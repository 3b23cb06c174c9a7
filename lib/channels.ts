/**
 * The local registry: which members of this node listen to which adapter topic. It subscribes the node to a
 * topic when the first local member arrives and unsubscribes when the last one leaves (reference counting),
 * and fans each delivery out to the topic's members. On a channel with history it passes live deliveries through
 * the topic's `StreamFollower` (offsets once, in order) and writes the offset into the frame once per message;
 * a member joining such a channel (or a presence channel) is *held*: its deliveries are kept aside until its
 * `joined` (and replay, snapshot) went out, then released in order. It knows nothing of sockets.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { RealtimeAdapter } from './adapters/adapter.js'
import type { StreamPosition } from './adapters/history.js'
import type { Metrics } from './metrics.js'
import { DEVICE_TOPIC_PREFIX } from './constants.js'
import { DeviceTopic } from './device-topic.js'
import { Topic, type Member, type TopicContext } from './topic.js'

export type { Member } from './topic.js'

/**
 * How a channel's stream is read, for the registry's followers: `undefined` for a topic without history.
 */
export type StreamReader = (topic: string) => ((since: number, limit: number) => ReturnType<NonNullable<RealtimeAdapter['history']>['read']>) | undefined

/**
 * This node's channels and device topics: one adapter subscription per topic while it has local members, the
 * fan-out of each delivery to them (once framed, then per member with no allocation), and the history followers.
 */
export class ChannelRegistry {
  readonly #topics = new Map<string, Topic | DeviceTopic>()
  readonly #adapter: RealtimeAdapter
  readonly #ctx: TopicContext
  readonly #streamOf: StreamReader

  constructor (adapter: RealtimeAdapter, log: FastifyBaseLogger, metrics: Metrics, streamOf: StreamReader = () => undefined) {
    this.#adapter = adapter
    this.#ctx = { log, metrics }
    this.#streamOf = streamOf
  }

  /**
   * Adds `member` to `topic`, subscribing the node first if it is the topic's first member. Resolves once the
   * adapter subscription is active, so anything published afterwards reaches the member. Rejects with the
   * adapter's error when the subscription fails; the member is then not added.
   */
  async add (topic: string, member: Member, hold = false): Promise<void> {
    let entry = this.#topics.get(topic)
    if (entry === undefined) entry = this.#create(topic)
    entry.pending++
    try {
      await entry.ready
    } catch (err) {
      entry.pending--
      if (entry.unused && this.#topics.get(topic) === entry) this.#topics.delete(topic)
      throw err
    }
    entry.ready = undefined // active: nothing to keep
    entry.pending--
    if (hold && entry instanceof Topic) (entry.held ??= new Map()).set(member, [])
    else entry.addMember(member)
  }

  /**
   * Releases a member added with `hold`: sends what was kept for it (plain messages, and stream messages and
   * resets after `floor`, the offset its replay reached), in arrival order, then it receives like any member. On a
   * topic with history, `position` (the stream top just read) seeds this node's follower.
   */
  release (topic: string, member: Member, floor = 0, position?: StreamPosition): void {
    const entry = this.#topics.get(topic)
    if (!(entry instanceof Topic)) return
    const held = entry.held?.get(member)
    if (held === undefined || typeof held === 'number') return
    if (position !== undefined) entry.follower?.seed(position)
    for (const [text, offset, except] of held) {
      if ((offset === undefined || offset > floor) && except !== member.deviceId) member.sendFrame(text)
    }
    const reached = entry.follower?.position?.offset ?? floor
    if (entry.follower === undefined || reached >= floor) {
      entry.held!.delete(member)
      entry.addMember(member)
    } else {
      entry.held!.set(member, floor) // this node is behind the member's read: skip what it already has
    }
  }

  /**
   * The stream position up to which `member` of `topic` was sent (topics with history this node follows), or
   * `undefined`: this node's position, or the member's own when its join read further than the node got.
   */
  position (topic: string, member: Member): StreamPosition | undefined {
    const entry = this.#topics.get(topic)
    const followed = entry?.follower?.position
    if (!(entry instanceof Topic) || followed === undefined) return undefined
    const held = entry.held?.get(member)
    return { offset: typeof held === 'number' ? held : followed.offset, epoch: followed.epoch }
  }

  /** Reads every followed stream up to its top (after the adapter reconnected: deliveries may have been lost). */
  catchUp (): void {
    for (const entry of this.#topics.values()) entry.follower?.catchUp()
  }

  /** Removes `member` from `topic`; the node unsubscribes when no member is left. Never throws. */
  remove (topic: string, member: Member): void {
    const entry = this.#topics.get(topic)
    if (entry === undefined) return
    entry.removeMember(member)
    entry.held?.delete(member)
    if (!entry.unused) return
    this.#topics.delete(topic)
    this.#adapter.unsubscribe(topic, entry.handler).catch((err: unknown) => {
      this.#ctx.metrics.adapterError()
      this.#ctx.log.warn({ err, topic }, 'fastify-realtime: adapter unsubscribe failed')
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

  #create (topic: string): Topic | DeviceTopic {
    const entry = topic.startsWith(DEVICE_TOPIC_PREFIX) ? new DeviceTopic(topic, this.#ctx) : new Topic(topic, this.#ctx, this.#streamOf(topic))
    const ready = this.#adapter.subscribe(topic, entry.handler)
    entry.ready = ready
    // The promise is awaited by add(); this handler counts a failed subscribe once, and keeps an early rejection
    // from being "unhandled".
    ready.catch(() => { this.#ctx.metrics.adapterError() })
    this.#topics.set(topic, entry)
    return entry
  }
}
