/**
 * Starts a real Redis Cluster (3 masters + 3 replicas) from `redis-server` and `redis-cli --cluster create` on free
 * loopback ports, each node in its own temp dir, for one test file; and injects faults: a graceful failover on a
 * replica, a slot migration with `CLUSTER SETSLOT`, SIGKILL of a master. Every wait polls with a deadline.
 *
 * Processes are stopped by pid on teardown. They cannot outlive the test process even when it is killed: each
 * redis-server runs under `setpriv --pdeathsig KILL` (Linux), and an 'exit' hook kills them too.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'

const run = promisify(execFile)
const HOST = '127.0.0.1'
/** Cluster node timeout, in ms: a dead master is replaced after about twice this. */
export const NODE_TIMEOUT = 2000

export interface RedisCluster {
  /** Start nodes for an ioredis `Cluster` (every node of the cluster). */
  nodes: Array<{ host: string, port: number }>
  /** Runs one command on the node at `port` (a plain connection, not cluster-routed). */
  command: (port: number, ...args: Array<string | number>) => Promise<unknown>
  /** Ports of the masters that own slots, as the node at `via` (default: any live node) sees them. */
  masters: () => Promise<number[]>
  /** Port of the master owning `slot`. */
  ownerOf: (slot: number) => Promise<number>
  /** Port of the (live) replica of the master at `port`. */
  replicaOf: (port: number) => Promise<number>
  /** `CLUSTER FAILOVER` on the replica of the master at `port`; resolves with the new master's port once settled. */
  failover: (port: number) => Promise<number>
  /** Moves `slot` (and its keys) to the master at `to` with CLUSTER SETSLOT IMPORTING/MIGRATING/NODE; waits until settled. */
  migrateSlot: (slot: number, to: number) => Promise<void>
  /** SIGKILLs the master at `port` (no wait for the failover); resolves with the port of its replica. */
  kill: (port: number) => Promise<number>
  /** Resolves with the replica's port once it replaced the killed master at `port` and every live node agrees. */
  replaced: (port: number, timeout?: number) => Promise<number>
  /** Starts the killed node again (same dir, same nodes.conf); resolves once it is a linked replica. */
  restart: (port: number) => Promise<void>
  /** Process ids of the live nodes (masters and replicas), e.g. to read their CPU time. */
  pids: () => number[]
  /** Stops every node (SIGKILL by pid) and removes the temp dirs. */
  stop: () => Promise<void>
}

/** Options of `startRedisCluster`. */
export interface RedisClusterOptions {
  /** Replicas per master: 1 (default; failover and kill need it) or 0 (3 masters only, e.g. for a benchmark). */
  replicas?: 0 | 1
}

interface NodeProcess { port: number, dir: string, child?: ChildProcess }

/** A node as one `CLUSTER NODES` line describes it. */
interface NodeLine { id: string, port: number, flags: string[], master: string, slots: string[] }

/** Is `port` free on the loopback interface? */
async function portFree (port: number): Promise<boolean> {
  const server = createServer()
  return await new Promise((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, HOST, () => server.close(() => resolve(true)))
  })
}

/**
 * `count` consecutive free ports in [10000, 22000) whose bus ports (+10000) are free too: both below Linux's
 * ephemeral range (32768-60999 by default), or an outgoing connection of another test may take a port between this
 * check and redis-server's bind (seen: a node that never came up while a benchmark ran beside the tests).
 */
async function freePorts (count: number): Promise<number[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10000 + Math.floor(Math.random() * (12000 - count))
    const ports = Array.from({ length: count }, (_, i) => base + i)
    let ok = true
    for (const p of ports) {
      if (!(await portFree(p)) || !(await portFree(p + 10000))) { ok = false; break }
    }
    if (ok) return ports
  }
  throw new Error('no free port range for a Redis Cluster')
}

/** Polls `check` every 50 ms until it returns a value other than undefined; fails after `timeout` ms. */
export async function poll<T> (check: () => Promise<T | undefined>, timeout: number, what: string): Promise<T> {
  const deadline = Date.now() + timeout
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Starts the cluster; register `t.teardown(cluster.stop)`. */
export async function startRedisCluster (options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const replicas = options.replicas ?? 1
  const ports = await freePorts(3 * (1 + replicas))
  const root = await mkdtemp(join(tmpdir(), 'realtime-cluster-'))
  const procs = new Map<number, NodeProcess>(ports.map((port) => [port, { port, dir: join(root, String(port)) }]))
  const clients = new Map<number, Redis>()
  const dead = new Set<number>()
  const heirs = new Map<number, number>()
  const reapAll = (): void => { for (const p of procs.values()) p.child?.kill('SIGKILL') }
  process.once('exit', reapAll)

  async function spawnNode (node: NodeProcess): Promise<void> {
    const args = [
      '--port', String(node.port), '--bind', HOST, '--dir', node.dir, '--daemonize', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', String(NODE_TIMEOUT),
      '--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0', '--enable-debug-command', 'local',
      '--logfile', join(node.dir, 'redis.log')
    ]
    const setpriv = '/usr/bin/setpriv'
    const child = existsSync(setpriv)
      ? spawn(setpriv, ['--pdeathsig', 'KILL', 'redis-server', ...args], { stdio: 'ignore' })
      : spawn('redis-server', args, { stdio: 'ignore' })
    node.child = child
    dead.delete(node.port)
    await poll(async () => (await command(node.port, 'PING')) === 'PONG' ? true : undefined, 10_000, `redis-server on ${node.port}`)
  }

  function client (port: number): Redis {
    let c = clients.get(port)
    if (c === undefined || c.status === 'end') {
      c = new Redis({ host: HOST, port, retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: true, lazyConnect: true })
      c.on('error', () => {}) // a killed node: commands reject, the client ends, the next command makes a new one
      clients.set(port, c)
    }
    return c
  }

  async function command (port: number, ...args: Array<string | number>): Promise<unknown> {
    const [name, ...rest] = args
    return await client(port).call(String(name), ...rest)
  }

  function live (): number[] { return ports.filter((p) => !dead.has(p)) }

  async function nodeLines (port: number): Promise<NodeLine[]> {
    const text = String(await command(port, 'CLUSTER', 'NODES'))
    return text.trim().split('\n').map((line) => {
      const [id, addr, flags, master, , , , , ...slots] = line.split(' ')
      return { id: id!, port: Number(addr!.split('@')[0]!.split(':')[1]), flags: flags!.split(','), master: master!, slots }
    })
  }

  /**
   * The settled view: every live node reports cluster_state:ok, lists the same masters with the same slots (no
   * node flagged fail among them), and every live replica has its master link up. Returns the master ports.
   */
  async function settled (replicas: number): Promise<number[] | undefined> {
    let views: string | undefined
    let masters: number[] = []
    for (const port of live()) {
      const info = String(await command(port, 'CLUSTER', 'INFO'))
      if (!info.includes('cluster_state:ok')) return undefined
      const lines = await nodeLines(port)
      const owners = lines.filter((n) => n.slots.length > 0 && !n.flags.includes('fail') && !n.flags.includes('fail?'))
      if (owners.some((n) => !n.flags.includes('master'))) return undefined
      const view = owners.map((n) => `${n.port}:${n.slots.join(',')}`).sort().join(' ')
      if (views !== undefined && view !== views) return undefined
      views = view
      masters = owners.map((n) => n.port).sort((x, y) => x - y)
      const linked = lines.filter((n) => n.flags.includes('slave') && !n.flags.includes('fail') && !dead.has(n.port))
      if (linked.length !== replicas) return undefined
      const me = lines.find((n) => n.flags.includes('myself'))!
      if (me.flags.includes('slave')) {
        const repl = String(await command(port, 'INFO', 'replication'))
        if (!repl.includes('master_link_status:up')) return undefined
      }
    }
    return masters.length === 3 ? masters : undefined
  }

  async function waitSettled (replicas: number, timeout: number, what: string): Promise<number[]> {
    return await poll(() => settled(replicas), timeout, what)
  }

  async function idOf (port: number): Promise<string> {
    return String(await command(port, 'CLUSTER', 'MYID'))
  }

  async function replicaOf (port: number): Promise<number> {
    const id = await idOf(port)
    const lines = await nodeLines(port)
    const replica = lines.find((n) => n.master === id && !n.flags.includes('fail'))
    if (replica === undefined) throw new Error(`no replica for master ${port}`)
    return replica.port
  }

  async function ownerOf (slot: number): Promise<number> {
    const reply = await command(live()[0]!, 'CLUSTER', 'SLOTS') as Array<[number, number, [string, number]]>
    const range = reply.find(([from, to]) => slot >= from && slot <= to)
    if (range === undefined) throw new Error(`slot ${slot} has no owner`)
    return Number(range[2][1])
  }

  for (const node of procs.values()) await mkdir(node.dir)
  await Promise.all([...procs.values()].map(spawnNode))
  /** Replicas expected linked: one per master that has one, minus the killed nodes. */
  const linked = (): number => 3 * replicas - dead.size
  await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `${HOST}:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 30_000 })
  await waitSettled(linked(), 30_000, `cluster_state:ok with ${linked()} linked replicas`)

  return {
    nodes: ports.map((port) => ({ host: HOST, port })),
    command,
    masters: async () => await waitSettled(linked(), 10_000, 'a settled cluster'),
    ownerOf,
    replicaOf,

    async failover (port) {
      const replica = await replicaOf(port)
      await command(replica, 'CLUSTER', 'FAILOVER')
      await poll(async () => {
        const masters = await settled(linked())
        return masters?.includes(replica) === true && !masters.includes(port) ? true : undefined
      }, 15_000, `failover of ${port} to ${replica}`)
      return replica
    },

    async migrateSlot (slot, to) {
      const from = await ownerOf(slot)
      if (from === to) return
      const [fromId, toId] = await Promise.all([idOf(from), idOf(to)])
      await command(to, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId)
      await command(from, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId)
      for (let round = 0; round < 10_000; round++) {
        const keys = await command(from, 'CLUSTER', 'GETKEYSINSLOT', slot, 100) as string[]
        if (keys.length === 0) break
        await command(from, 'MIGRATE', HOST, to, '', 0, 5000, 'KEYS', ...keys)
      }
      await command(to, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId)
      await command(from, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId)
      const masters = await waitSettled(linked(), 10_000, 'masters after migration')
      for (const m of masters) if (m !== from && m !== to) await command(m, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId)
      await poll(async () => {
        if ((await settled(linked())) === undefined) return undefined
        for (const port of live()) {
          const lines = await nodeLines(port)
          const owner = lines.find((n) => n.slots.some((range) => {
            const [a, b] = range.split('-').map(Number)
            return slot >= a! && slot <= (b ?? a)!
          }))
          if (owner?.port !== to) return undefined
        }
        return true
      }, 10_000, `slot ${slot} owned by ${to} on every node`)
    },

    async kill (port) {
      const replica = await replicaOf(port)
      heirs.set(port, replica)
      dead.add(port)
      procs.get(port)!.child?.kill('SIGKILL')
      clients.get(port)?.disconnect()
      return replica
    },

    async replaced (port, timeout = 20_000) {
      const heir = heirs.get(port)
      await poll(async () => (await settled(linked()))?.includes(heir!) === true ? true : undefined,
        timeout, `replica ${heir} to replace the killed master ${port}`)
      return heir!
    },

    async restart (port) {
      await spawnNode(procs.get(port)!)
      await waitSettled(linked(), 20_000, `${port} back as a linked replica`)
    },

    pids: () => [...procs.values()].filter((p) => p.child?.pid !== undefined && !dead.has(p.port)).map((p) => p.child!.pid!),

    async stop () {
      for (const c of clients.values()) c.disconnect()
      const exits: Array<Promise<unknown>> = []
      for (const node of procs.values()) {
        const child = node.child
        if (child !== undefined && child.exitCode === null && child.signalCode === null) {
          exits.push(once(child, 'exit'))
          child.kill('SIGKILL')
        }
      }
      await Promise.all(exits)
      process.off('exit', reapAll)
      await rm(root, { recursive: true, force: true })
    }
  }
}
