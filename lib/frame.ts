/**
 * Delivery frames built once per message and written as-is to every member's TCP socket, with the writes of one
 * tick corked per socket so several frames leave in one `writev` (one syscall) instead of one write each.
 */
import type { Socket } from 'node:net'
import * as ws from 'ws'

interface FrameOptions { fin: boolean, rsv1: boolean, opcode: number, mask: boolean, readOnly: boolean }
// ws exports its Sender (the RFC 6455 framer) from its ESM entry; @types/ws does not declare it.
const { Sender } = ws as unknown as { Sender: { frame: (data: Buffer, options: FrameOptions) => Buffer[] } }

/** Server-to-client frames are final, unmasked (RFC 6455 §5.1) and uncompressed. */
const TEXT: FrameOptions = { fin: true, rsv1: false, opcode: 0x01, mask: false, readOnly: false }
/** The same with RSV1 set: the payload is a compressed message (RFC 7692 §6, "Per-Message Compressed" bit). */
const DEFLATED_TEXT: FrameOptions = { ...TEXT, rsv1: true }

/** Builds the complete bytes of one unmasked text frame (RFC 6455 §5.2) carrying `payload`: header + payload. */
export function textFrame (payload: Buffer): Buffer {
  const parts = Sender.frame(payload, TEXT)
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, parts[0]!.length + payload.length)
}

/**
 * Builds the complete bytes of one unmasked text frame with RSV1 set, carrying `compressed`: a message already
 * compressed per RFC 7692 §7.2.1 (raw DEFLATE, the trailing 00 00 ff ff removed). See deflate.ts.
 */
export function deflatedTextFrame (compressed: Buffer): Buffer {
  const parts = Sender.frame(compressed, DEFLATED_TEXT)
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, parts[0]!.length + compressed.length)
}

/** Sockets corked in this loop iteration, uncorked together at its end. Reused: no allocation per write. */
const corked: Socket[] = []
let flushScheduled = false

function flush (): void {
  flushScheduled = false
  for (let i = 0; i < corked.length; i++) corked[i]!.uncork()
  corked.length = 0
}

/**
 * Writes `frame` to `socket`, corking the socket on its first write of the loop iteration. Every write of it then
 * leaves in one `writev` at the end of this event-loop iteration (`setImmediate`, after every I/O callback of the
 * poll phase, so frames from several reads share it): a burst of messages costs one syscall per socket,
 * not one per message. ws corks and uncorks within each of its own sends, so a socket still corked here was corked
 * by us in this iteration.
 */
export function writeCorked (socket: Socket, frame: Buffer): void {
  if (socket.writableCorked === 0) {
    socket.cork()
    corked.push(socket)
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flush)
    }
  }
  socket.write(frame)
}
