// Counts the tests of the last `tap` run from its saved TAP streams (.tap/test-results/**/*.tap): every
// top-level `ok` / `not ok` of a file is one test (a `t.test(...)` block). Further arguments `name=status`
// (e.g. `bench:smoke=0`) count as one test each. Prints "N passed, N failed" and exits non-zero when anything
// failed, when npm test itself failed, or when no test ran at all.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const status = Number(process.argv[2] ?? 0)
const root = '.tap/test-results'
let passed = 0
let failed = 0
const failures = []

function walk (dir) {
  let entries = []
  try { entries = readdirSync(dir, { withFileTypes: true }) } catch { return }
  for (const e of entries) {
    const path = join(dir, e.name)
    if (e.isDirectory()) walk(path)
    else if (e.name.endsWith('.tap')) count(path)
  }
}

function count (file) {
  const lines = readFileSync(file, 'utf8').split('\n')
  let fileTests = 0
  for (const line of lines) {
    const m = /^(not )?ok \d+ - (.*?)(?: # (?:time|SKIP|TODO).*)?$/.exec(line)
    if (m === null) continue
    fileTests++
    if (m[1] === undefined && !/# (SKIP|TODO)/.test(line)) passed++
    else { failed++; failures.push(`${file}: ${m[2]}`) }
  }
  if (fileTests === 0) { failed++; failures.push(`${file}: no test ran (crashed or empty)`) }
}

walk(root)
for (const arg of process.argv.slice(3)) {
  const [name, code] = arg.split('=')
  if (Number(code) === 0) passed++
  else { failed++; failures.push(`${name} exited with ${code}`) }
}
if (status !== 0 && failed === 0) { failed++; failures.push(`npm test exited with ${status} (type check or a crashed test file)`) }
if (passed + failed === 0) { failed++; failures.push('no test results found') }
for (const f of failures) console.log(`FAILED: ${f}`)
console.log(`${passed} passed, ${failed} failed`)
process.exit(failed > 0 ? 1 : 0)
