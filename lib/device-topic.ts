/**
 * A deviceId's adapter topic on this node (direct messages, control commands), as a lighter `Topic`: a node holds
 * one per connected deviceId, nearly always with a single member, so the member is kept as is (a Set only when the
 * same deviceId is connected more than once to this node). No history, no held members.
 */
import type { MessageHandler } from './adapters/adapter.js'
import { textFrame } from './frame.js'
import { openEnvelope, type Member, type TopicContext } from './topic.js'

const OPEN_BRACE = 123

/** One deviceId's topic: its member(s) on this node, its adapter subscription and handler, and the delivery. */
export class DeviceTopic {
  readonly name: string
  /** Members waiting for the adapter subscription; they hold the topic alive too. */
  pending = 0
  /** The adapter subscription while it is under way; `undefined` once it is active. */
  ready: Promise<void> | undefined
  /** The one function the adapter calls for this topic (also the key of its `unsubscribe`). */
  readonly handler: MessageHandler
  /** The member, or a Set of them when the deviceId is connected several times to this node. */
  #members: Member | Set<Member> | undefined
  readonly #ctx: TopicContext

  constructor (name: string, ctx: TopicContext) {
    this.name = name
    this.#ctx = ctx
    this.handler = (message) => { this.emit(message) }
  }

  /** A device topic has no stream (same surface as `Topic`, nothing kept per instance). */
  get follower (): undefined {
    return undefined
  }

  /** A device topic never holds members (same surface as `Topic`). */
  get held (): undefined {
    return undefined
  }

  /** Whether nothing keeps the topic: no member, none waiting for the subscription. */
  get unused (): boolean {
    return this.#members === undefined && this.pending === 0
  }

  /** Adds a member (a no-op when it is a member already). */
  addMember (member: Member): void {
    const members = this.#members
    if (members === undefined) this.#members = member
    else if (members instanceof Set) members.add(member)
    else if (members !== member) this.#members = new Set([members, member])
  }

  /** Removes a member (a no-op when it is not one). */
  removeMember (member: Member): void {
    const members = this.#members
    if (members === member) {
      this.#members = undefined
    } else if (members instanceof Set) {
      members.delete(member)
      if (members.size === 0) this.#members = undefined
    }
  }

  /** Delivers a direct message (framed once, as `Topic.emit`) or applies a control command to the members. */
  emit (message: string): void {
    const members = this.#members
    if (members === undefined) return
    let text = message
    let except: string | undefined
    if (message.charCodeAt(0) !== OPEN_BRACE) {
      const envelope = openEnvelope(this.name, message, this.#ctx.log)
      if (envelope === undefined) return
      if (!Array.isArray(envelope)) {
        if (members instanceof Set) for (const member of members) member.control(envelope)
        else members.control(envelope)
        return
      }
      [text, except] = envelope
    }
    const payload = Buffer.from(text)
    const frame = textFrame(payload)
    let reached = 0
    if (members instanceof Set) {
      for (const member of members) if (member.deviceId !== except && member.deliver(payload, frame)) reached++
    } else if (members.deviceId !== except && members.deliver(payload, frame)) {
      reached++
    }
    this.#ctx.metrics.delivered(reached, payload.length)
  }
}
