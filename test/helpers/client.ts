/**
 * A real WebSocket client (ws over TCP) that buffers server frames so a test can await them in order.
 */
import WebSocket from 'ws'
import { once } from 'node:events'

export interface Frame { type: string, [key: string]: any }

export class TestClient {
  readonly ws: WebSocket
  readonly frames: Frame[] = []
  #waiters: Array<{ match: (f: Frame) => boolean, resolve: (f: Frame) => void, reject: (e: Error) => void }> = []
  readonly closed: Promise<{ code: number, reason: string }>

  constructor (url: string, options?: WebSocket.ClientOptions) {
    this.ws = new WebSocket(url, options)
    this.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame
      const i = this.#waiters.findIndex((w) => w.match(frame))
      if (i === -1) {
        this.frames.push(frame)
      } else {
        const [w] = this.#waiters.splice(i, 1)
        w!.resolve(frame)
      }
    })
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        for (const w of this.#waiters.splice(0)) w.reject(new Error(`socket closed (${code}) while waiting`))
        resolve({ code, reason: reason.toString() })
      })
    })
    this.ws.on('error', () => {}) // handshake failures are asserted through `opened`
  }

  /** Resolves with the first buffered or future frame matching `match` (consumed). */
  next (match: Partial<Frame> | ((f: Frame) => boolean) = () => true): Promise<Frame> {
    const fn = typeof match === 'function'
      ? match
      : (f: Frame) => Object.entries(match).every(([k, v]) => f[k] === v)
    const i = this.frames.findIndex(fn)
    if (i !== -1) return Promise.resolve(this.frames.splice(i, 1)[0]!)
    return new Promise((resolve, reject) => this.#waiters.push({ match: fn, resolve, reject }))
  }

  send (frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** Sends a request frame and waits for the reply carrying the same id. */
  async request (frame: Record<string, unknown> & { id: string | number }): Promise<Frame> {
    this.send(frame)
    return this.next((f) => f.id === frame.id && f.type !== 'message')
  }

  async join (channel: string): Promise<Frame> {
    return this.request({ type: 'join', channel, id: `join:${channel}` })
  }

  close (code?: number): Promise<{ code: number, reason: string }> {
    this.ws.close(code)
    return this.closed
  }
}

/** Connects and waits for the welcome frame. */
export async function connect (url: string, options?: WebSocket.ClientOptions): Promise<TestClient & { deviceId: string }> {
  const client = new TestClient(url, options)
  const welcome = await client.next({ type: 'welcome' })
  return Object.assign(client, { deviceId: welcome.deviceId as string })
}

/** Resolves with the HTTP status of a refused upgrade. */
export async function refusedStatus (url: string, options?: WebSocket.ClientOptions): Promise<number> {
  const ws = new WebSocket(url, options)
  ws.on('error', () => {})
  const [, res] = await once(ws, 'unexpected-response')
  res.resume()
  ws.terminate()
  return res.statusCode
}
