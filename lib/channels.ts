/**
 * The local registry: which members of this node listen to which adapter topic. It subscribes the node to a
 * topic when the first local member arrives and unsubscribes when the last one leaves (reference counting),
 * and fans each delivery out to the topic's members. On a channel with history it passes live deliveries through
 * the topic's `StreamFollower` (offsets once, in order) and writes the offset into the frame once per message;
 * a member joining such a channel (or a presence channel) is *held*: its deliveries are kept aside until its
 * `joined` (and replay, snapshot) went out, then released in order. It knows nothing of sockets.
 */
import type { FastifyBaseLogger } from 'fastify'
import type { MessageHandler, RealtimeAdapter } from './adapters/adapter.js'
import type { StreamPosition } from './adapters/history.js'
import { DEVICE_TOPIC_PREFIX } from './constants.js'
import { type ControlCommand, controlCommand, decodeEnvelope } from './envelope.js'
import { textFrame } from './frame.js'
import { withOffset } from './history.js'
import type { Metrics } from './metrics.js'
import { resetFrame } from './protocol.js'
import { StreamFollower } from './stream-follower.js'

/**
 * Anything that can receive a delivery: a connection. `deliver` gets the message payload and the complete
 * WebSocket frame carrying it (both built once per message, shared by every member), returns whether it wrote it,
 * and must not throw.
 * `control` applies a control command received on the member's device topic; it must not throw.
 */
export interface Member {
  readonly deviceId: string
  deliver: (payload: Buffer, frame: Buffer) => boolean
  control: (command: ControlCommand) => void
  /** Sends one serialised frame to this member only (held deliveries, replays); must not throw. */
  sendFrame: (text: string) => void
}

/** A delivery kept for a held member: the frame text, its offset (none for a plain message), an excepted deviceId. */
type Held = [text: string, offset: number | undefined, except: string | undefined]

/**
 * How a channel's stream is read, for the registry's followers: `undefined` for a topic without history.
 */
export type StreamReader = (topic: string) => ((since: number, limit: number) => ReturnType<NonNullable<RealtimeAdapter['history']>['read']>) | undefined

const OPEN_BRACE = 123

interface TopicEntry {
  members: Set<Member>
  /** Members waiting for the adapter subscription; they hold the topic alive too. */
  pending: number
  ready: Promise<void>
  handler: MessageHandler
  /** Continuity of the topic's stream on this node (topics with history only). */
  follower: StreamFollower | undefined
  /**
   * Held members: their deliveries while joining (an array), or, once released, the offset up to which they already
   * got the stream (a number) until this node's deliveries pass it.
   */
  held: Map<Member, Held[] | number>
}

export class ChannelRegistry {
  readonly #topics = new Map<string, TopicEntry>()
  readonly #adapter: RealtimeAdapter
  readonly #log: FastifyBaseLogger
  readonly #metrics: Metrics

  readonly #streamOf: StreamReader

  constructor (adapter: RealtimeAdapter, log: FastifyBaseLogger, metrics: Metrics, streamOf: StreamReader = () => undefined) {
    this.#metrics = metrics
    this.#adapter = adapter
    this.#log = log
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
      if (this.#isUnused(entry) && this.#topics.get(topic) === entry) this.#topics.delete(topic)
      throw err
    }
    entry.pending--
    if (hold) entry.held.set(member, [])
    else entry.members.add(member)
  }

  /**
   * Releases a member added with `hold`: sends what was kept for it (plain messages, and stream messages and
   * resets after `floor`, the offset its replay reached), in arrival order, then it receives like any member. On a
   * topic with history, `position` (the stream top just read) seeds this node's follower.
   */
  release (topic: string, member: Member, floor = 0, position?: StreamPosition): void {
    const entry = this.#topics.get(topic)
    const held = entry?.held.get(member)
    if (entry === undefined || held === undefined || typeof held === 'number') return
    if (position !== undefined) entry.follower?.seed(position)
    for (const [text, offset, except] of held) {
      if ((offset === undefined || offset > floor) && except !== member.deviceId) member.sendFrame(text)
    }
    const reached = entry.follower?.position?.offset ?? floor
    if (entry.follower === undefined || reached >= floor) {
      entry.held.delete(member)
      entry.members.add(member)
    } else {
      entry.held.set(member, floor) // this node is behind the member's read: skip what it already has
    }
  }

  /** Reads every followed stream up to its top (after the adapter reconnected: deliveries may have been lost). */
  catchUp (): void {
    for (const entry of this.#topics.values()) entry.follower?.catchUp()
  }

  /** Removes `member` from `topic`; the node unsubscribes when no member is left. Never throws. */
  remove (topic: string, member: Member): void {
    const entry = this.#topics.get(topic)
    if (entry === undefined) return
    entry.members.delete(member)
    entry.held.delete(member)
    if (!this.#isUnused(entry)) return
    this.#topics.delete(topic)
    this.#adapter.unsubscribe(topic, entry.handler).catch((err: unknown) => {
      this.#metrics.adapterError()
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
    const held = new Map<Member, Held[] | number>()
    const isDeviceTopic = topic.startsWith(DEVICE_TOPIC_PREFIX)
    const log = this.#log
    const metrics = this.#metrics
    const channel = topic.slice(topic.indexOf(':') + 1)

    /** Offers a delivery to the held members: kept while joining, sent once past what their replay covered. */
    function offer (text: string, offset: number | undefined, except: string | undefined): void {
      for (const [member, state] of held) {
        if (typeof state !== 'number') {
          state.push([text, offset, except])
        } else if (offset === undefined || offset > state) {
          if (except !== member.deviceId) member.sendFrame(text)
          if (offset !== undefined) {
            held.delete(member)
            members.add(member)
          }
        }
      }
    }

    // One handler per topic, not per message: a delivery serialised once at the publishing node is turned into
    // bytes and framed once per node, and the same Buffer is written to every member. Extended messages
    // (envelope.ts) are decoded once here too, never per member; an offset is written into the frame once. Metrics
    // count the members reached once per message.
    function fanOut (message: string, offset: number | undefined): void {
      if (members.size === 0 && held.size === 0) return
      if (message.charCodeAt(0) === OPEN_BRACE) {
        const text = offset === undefined ? message : withOffset(message, offset)
        const payload = Buffer.from(text)
        const frame = textFrame(payload)
        let reached = 0
        for (const member of members) if (member.deliver(payload, frame)) reached++
        metrics.delivered(reached, payload.length)
        if (held.size > 0) offer(text, offset, undefined) // after: a member released here joins `members`
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
      const text = offset === undefined ? envelope.frame : withOffset(envelope.frame, offset)
      const except = header.e
      const payload = Buffer.from(text)
      const frame = textFrame(payload)
      let reached = 0
      for (const member of members) if (member.deviceId !== except && member.deliver(payload, frame)) reached++
      metrics.delivered(reached, payload.length)
      if (held.size > 0) offer(text, offset, except)
    }

    const read = this.#streamOf(topic)
    const follower = read === undefined
      ? undefined
      : new StreamFollower(channel, {
        read,
        emit: fanOut,
        reset (epoch, offset) {
          const text = resetFrame(channel, epoch, offset)
          for (const [member, state] of held) {
            if (typeof state !== 'number') state.push([text, offset, undefined])
            else if (offset > state) member.sendFrame(text)
          }
          for (const member of members) member.sendFrame(text)
        }
      }, log)

    const handler: MessageHandler = follower === undefined
      ? (message) => fanOut(message, undefined)
      : (message, position) => {
          if (position === undefined) fanOut(message, undefined)
          else follower.accept(message, position)
        }
    const entry: TopicEntry = { members, pending: 0, handler, follower, held, ready: this.#adapter.subscribe(topic, handler) }
    // The promise is awaited by add(); this handler counts a failed subscribe once, and keeps an early rejection
    // from being "unhandled".
    entry.ready.catch(() => { metrics.adapterError() })
    this.#topics.set(topic, entry)
    return entry
  }

  #isUnused (entry: TopicEntry): boolean {
    return entry.members.size === 0 && entry.pending === 0 && entry.held.size === 0
  }
}
