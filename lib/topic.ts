/**
 * One adapter topic on this node: its local members, the members held while they join (history, presence), the
 * node's adapter subscription and its handler, and the fan-out of each delivery. State lives on the object and the
 * logic on its prototype, so a topic costs one object, one Set and one small handler closure. A deviceId's topic (direct
 * messages, one per connected deviceId) is the lighter `DeviceTopic` (device-topic.ts).
 */
import type { FastifyBaseLogger } from 'fastify'
import type { MessageHandler } from './adapters/adapter.js'
import { DEVICE_TOPIC_PREFIX } from './constants.js'
import { controlCommand, decodeEnvelope, type ControlCommand } from './envelope.js'
import { textFrame } from './frame.js'
import { withOffset } from './history.js'
import type { Metrics } from './metrics.js'
import { resetFrame } from './protocol.js'
import { StreamFollower } from './stream-follower.js'
import type { StreamReader } from './channels.js'

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
export type Held = [text: string, offset: number | undefined, except: string | undefined]

const OPEN_BRACE = 123

/** What every topic of one registry shares. */
export interface TopicContext { log: FastifyBaseLogger, metrics: Metrics }

export class Topic {
  readonly name: string
  readonly members = new Set<Member>()
  /** Members waiting for the adapter subscription; they hold the topic alive too. */
  pending = 0
  /** The adapter subscription while it is under way; `undefined` once it is active. */
  ready: Promise<void> | undefined
  /** The one function the adapter calls for this topic (also the key of its `unsubscribe`). */
  readonly handler: MessageHandler
  /** Continuity of the topic's stream on this node (topics with history only). */
  readonly follower: StreamFollower | undefined
  /**
   * Held members: their deliveries while joining (an array), or, once released, the offset up to which they already
   * got the stream (a number) until this node's deliveries pass it. Created on the first hold.
   */
  held: Map<Member, Held[] | number> | undefined
  readonly #ctx: TopicContext

  /** `read`: how the topic's stream is read, `undefined` for a topic without history. */
  constructor (name: string, ctx: TopicContext, read: ReturnType<StreamReader>) {
    this.name = name
    this.#ctx = ctx
    if (read === undefined) {
      this.follower = undefined
      this.handler = (message) => { this.emit(message, undefined) }
    } else {
      const follower = new StreamFollower(name.slice(name.indexOf(':') + 1), { read, emit: this.emit.bind(this), reset: this.reset.bind(this) }, ctx.log)
      this.follower = follower
      this.handler = (message, position) => {
        if (position === undefined) this.emit(message, undefined)
        else follower.accept(message, position)
      }
    }
  }

  /** Adds a member that receives every delivery from now on. */
  addMember (member: Member): void {
    this.members.add(member)
  }

  /** Removes a member (not a held one: see `held`). */
  removeMember (member: Member): void {
    this.members.delete(member)
  }

  /** Whether nothing keeps the topic: no member, none held, none waiting for the subscription. */
  get unused (): boolean {
    return this.members.size === 0 && this.pending === 0 && (this.held === undefined || this.held.size === 0)
  }

  /**
   * Fans one delivery out (`offset`: its stream offset, none for a plain message). A delivery serialised once at the
   * publishing node is turned into bytes and framed once per node, and the same Buffer is written to every member.
   * Extended messages (envelope.ts) are decoded once here too, never per member; an offset is written into the frame
   * once. Metrics count the members reached once per message.
   */
  emit (message: string, offset: number | undefined): void {
    const members = this.members
    const held = this.held
    if (members.size === 0 && (held === undefined || held.size === 0)) return
    const metrics = this.#ctx.metrics
    if (message.charCodeAt(0) === OPEN_BRACE) {
      const text = offset === undefined ? message : withOffset(message, offset)
      const payload = Buffer.from(text)
      const frame = textFrame(payload)
      let reached = 0
      for (const member of members) if (member.deliver(payload, frame)) reached++
      metrics.delivered(reached, payload.length)
      if (held !== undefined && held.size > 0) this.#offer(held, text, offset, undefined) // after: a released member joins `members`
      return
    }
    const envelope = openEnvelope(this.name, message, this.#ctx.log)
    // A control command opens only on a device topic, and those are DeviceTopics: nothing to apply here.
    if (envelope === undefined || !Array.isArray(envelope)) return
    const [frameText, except] = envelope
    const text = offset === undefined ? frameText : withOffset(frameText, offset)
    const payload = Buffer.from(text)
    const frame = textFrame(payload)
    let reached = 0
    for (const member of members) if (member.deviceId !== except && member.deliver(payload, frame)) reached++
    metrics.delivered(reached, payload.length)
    if (held !== undefined && held.size > 0) this.#offer(held, text, offset, except)
  }

  /** The stream's continuity was lost: every member, held or not, gets a `reset` frame. */
  reset (epoch: string, offset: number): void {
    const text = resetFrame(this.name.slice(this.name.indexOf(':') + 1), epoch, offset)
    if (this.held !== undefined) {
      for (const [member, state] of this.held) {
        if (typeof state !== 'number') state.push([text, offset, undefined])
        else if (offset > state) member.sendFrame(text)
      }
    }
    for (const member of this.members) member.sendFrame(text)
  }

  /** Offers a delivery to the held members: kept while joining, sent once past what their replay covered. */
  #offer (held: Map<Member, Held[] | number>, text: string, offset: number | undefined, except: string | undefined): void {
    for (const [member, state] of held) {
      if (typeof state !== 'number') {
        state.push([text, offset, except])
      } else if (offset === undefined || offset > state) {
        if (except !== member.deviceId) member.sendFrame(text)
        if (offset !== undefined) {
          held.delete(member)
          this.members.add(member)
        }
      }
    }
  }
}

/**
 * Opens an adapter message that is not a plain frame (envelope.ts): a control command (device topics only), a frame
 * with its excepted deviceId (`[frame, except]`), or `undefined` when there is nothing to deliver (logged when it is
 * neither a frame nor a valid envelope). `topic` is the adapter topic it arrived on.
 */
export function openEnvelope (topic: string, message: string, log: FastifyBaseLogger): ControlCommand | [frame: string, except: string | undefined] | undefined {
  const envelope = decodeEnvelope(message)
  if (envelope === undefined) {
    log.warn({ topic }, 'fastify-realtime: dropped an adapter message that is neither a frame nor an envelope')
    return undefined
  }
  const header = envelope.header
  if (header.c !== undefined) {
    const command = topic.startsWith(DEVICE_TOPIC_PREFIX) ? controlCommand(header) : undefined
    if (command === undefined) log.warn({ topic, command: header.c }, 'fastify-realtime: dropped an invalid control command')
    return command
  }
  if (envelope.frame.charCodeAt(0) !== OPEN_BRACE) return undefined
  return [envelope.frame, header.e]
}
