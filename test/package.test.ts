/**
 * The published package as a user gets it: `npm pack` of this checkout, installed from the tarball into a scratch
 * app together with its peers from the npm registry (the lowest Fastify 5 we claim), then
 * - the tarball holds dist/ with declarations and CommonJS entries, lib/ (the source maps' sources), README,
 *   LICENSE and CHANGELOG, and no tests, benchmarks or examples;
 * - one copy of fastify (ours is a peer), and `tsc` WITHOUT skipLibCheck passes on an ESM app (`module: nodenext`)
 *   and on a `.cts` app (`module: node16` and `module: commonjs`), each of which then runs a real round trip:
 *   register the plugin, listen on 127.0.0.1, a `fastify-realtime/client` joins a channel and receives a publish;
 * - a plain CommonJS app `require()`s the plugin and the client, registers the plugin and answers a request;
 * - an error thrown in dist/ maps to its line in lib/ under `node --enable-source-maps`.
 * Needs the npm registry; takes about a minute (most of it `npm install`).
 */
import tap from 'tap'
import { execFile } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const fixtures = join(root, 'test', 'fixtures', 'package-app')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  version: string
  dependencies: Record<string, string>
  devDependencies: Record<string, string>
  peerDependencies: Record<string, string>
}

/** The lowest version a `^x.y.z` range admits: the Fastify the scratch app installs. */
const lowestFastify = /^\^(\d+\.\d+\.\d+)$/.exec(pkg.peerDependencies.fastify ?? '')?.[1]

interface Run { code: number | null, stdout: string, stderr: string }

/** Runs a command to its end (bounded by `timeout` ms) without the npm_* variables of the `npm test` around us. */
function run (file: string, args: string[], cwd: string, timeout = 300_000): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)))
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env, timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      resolve({ code, stdout, stderr })
    })
  })
}

/** The last line of a run's stdout, parsed as JSON. */
function lastJson (out: string): Record<string, unknown> {
  const lines = out.trim().split('\n')
  return JSON.parse(lines[lines.length - 1] ?? 'null') as Record<string, unknown>
}

// About 3 minutes on an idle machine (npm install, three tsc runs); 15 and more under heavy load: past tap's 120 s default.
tap.setTimeout(1_200_000)

tap.test('the packed tarball installs, type-checks and runs in ESM and CommonJS apps', async (t) => {
  t.ok(lowestFastify, `peerDependencies.fastify is a ^x.y.z range (${pkg.peerDependencies.fastify})`)
  const dir = mkdtempSync(join(tmpdir(), 'fastify-realtime-package-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const app = join(dir, 'app')

  // 1. npm pack (its `prepare` builds dist/)
  const packed = await run('npm', ['pack', '--json', '--pack-destination', dir], root)
  t.equal(packed.code, 0, `npm pack: ${packed.stderr.slice(-2000)}`)
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
  const tarball = join(dir, info[0]!.filename)
  const files = info[0]!.files.map((f) => f.path)
  for (const need of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/index.js', 'dist/index.d.ts', 'dist/index.cjs',
    'dist/index.d.cts', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/client/index.cjs', 'dist/client/index.d.cts',
    'dist/adapters/conformance.cjs', 'dist/adapters/conformance.d.cts', 'dist/index.js.map', 'lib/index.ts']) {
    t.ok(files.includes(need), `the tarball holds ${need}`)
  }
  t.same(files.filter((f) => /^(test|bench|examples|scripts|\.ci)\//.test(f) || /\.test\.|tsconfig/.test(f)), [],
    'no tests, benchmarks, examples, scripts or build config in the tarball')

  // 2. a scratch app: the tarball plus its peers from the registry, the lowest Fastify 5 we claim
  mkdirSync(app)
  for (const f of readdirSync(fixtures)) copyFileSync(join(fixtures, f), join(app, f))
  writeFileSync(join(app, 'package.json'), JSON.stringify({
    name: 'scratch-app',
    private: true,
    type: 'module',
    dependencies: { 'fastify-realtime': `file:${tarball}`, fastify: lowestFastify, typebox: pkg.dependencies.typebox },
    devDependencies: { typescript: pkg.devDependencies.typescript, '@types/node': pkg.devDependencies['@types/node'] }
  }, null, 2))
  const install = await run('npm', ['install', '--no-audit', '--no-fund'], app, 600_000)
  t.equal(install.code, 0, `npm install in the scratch app: ${install.stderr.slice(-3000)}`)
  const installed = JSON.parse(readFileSync(join(app, 'node_modules/fastify/package.json'), 'utf8')) as { version: string }
  t.equal(installed.version, lowestFastify, 'the app runs the lowest Fastify 5 we claim')
  t.notOk(existsSync(join(app, 'node_modules/fastify-realtime/node_modules/fastify')), 'no second copy of fastify under fastify-realtime')
  t.notOk(existsSync(join(app, 'node_modules/fastify-realtime/node_modules/typebox')), 'no second copy of typebox under fastify-realtime')

  // 3. tsc without skipLibCheck: ESM (nodenext), .cts with module node16, .cts with module commonjs
  const tsc = join(app, 'node_modules/typescript/bin/tsc')
  for (const config of ['esm', 'node16', 'commonjs']) {
    const checked = await run(process.execPath, [tsc, '-p', `tsconfig.${config}.json`], app)
    t.equal(checked.code, 0, `tsc -p tsconfig.${config}.json (skipLibCheck false) passes`)
    t.equal(checked.stdout + checked.stderr, '', `tsc -p tsconfig.${config}.json reports nothing`)
  }

  // 4. the apps run: register the plugin, a client joins and receives a publish
  const esm = await run(process.execPath, ['out-esm/app.js'], app, 60_000)
  t.equal(esm.code, 0, `ESM app: ${esm.stderr}`)
  t.same(lastJson(esm.stdout), { rejected: 'FST_REALTIME_VALIDATION_FAILED', received: 'hello from ESM' }, 'ESM app round trip')

  const cjs = await run(process.execPath, ['app.cjs'], app, 60_000)
  t.equal(cjs.code, 0, `CommonJS app: ${cjs.stderr}`)
  t.same(lastJson(cjs.stdout), { ping: { pong: true, plugin: 'function', realtimePlugin: true }, received: 'hello from CommonJS' },
    "require('fastify-realtime') registers, answers a request; require('fastify-realtime/client') receives the publish")

  for (const out of ['out-node16', 'out-commonjs']) {
    const cts = await run(process.execPath, [`${out}/app.cjs`], app, 60_000)
    t.equal(cts.code, 0, `${out}/app.cjs: ${cts.stderr}`)
    t.same(lastJson(cts.stdout), { received: { text: 'hello from .cts' } }, `${out}: the compiled .cts app round trip`)
  }

  // 5. an error thrown in dist/ points at its line in lib/
  const mapped = await run(process.execPath, ['--enable-source-maps', 'source-map.cjs'], app, 60_000)
  const result = lastJson(mapped.stdout) as { thrown: boolean, code?: string, stack?: string }
  t.equal(result.code, 'FST_REALTIME_INVALID_OPTION', 'redisAdapter({ url, client }) throws')
  const frame = /node_modules\/fastify-realtime\/(lib\/[\w/-]+\.ts):(\d+):\d+/.exec(result.stack ?? '')
  t.ok(frame, `the top frame is in lib/*.ts: ${result.stack?.split('\n')[1] ?? ''}`)
  if (frame !== null) {
    const source = readFileSync(join(app, 'node_modules/fastify-realtime', frame[1]!), 'utf8').split('\n')
    t.match(source[Number(frame[2]) - 1], /FST_REALTIME_INVALID_OPTION/, `${frame[1]}:${frame[2]} is the line that throws`)
  }
})
