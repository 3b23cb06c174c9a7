import t from 'tap'
import { readFile } from 'node:fs/promises'
import { METRICS } from '../lib/metric-catalogue.js'

const exported = new Set<string>()
for (const [name, { type }] of Object.entries(METRICS)) {
  exported.add(`realtime_${name}`)
  if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`realtime_${name}${suffix}`)
}

/** Grafana's reference to the dashboard's data source variable. */
const DATASOURCE_VARIABLE = '$' + '{datasource}'

interface Panel { title: string, type: string, datasource: { uid: string }, targets: Array<{ expr: string, datasource: { uid: string } }> }

t.test('the Grafana dashboard is valid JSON whose queries name only exported metrics', async (t) => {
  const dashboard = JSON.parse(await readFile(new URL('../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as {
    title: string, uid: string, schemaVersion: number, panels: Panel[], templating: { list: Array<{ name: string, type: string, query: unknown }> }
  }
  t.equal(dashboard.title, 'fastify-realtime')
  t.ok(dashboard.schemaVersion >= 36)
  t.match(dashboard.templating.list.find((v) => v.name === 'datasource'), { type: 'datasource', query: 'prometheus' },
    'the data source is a variable: imports as is')
  const ids = new Set<number>()
  const used = new Set<string>()
  for (const panel of dashboard.panels) {
    t.ok(panel.targets.length > 0, `${panel.title} has queries`)
    t.equal(panel.datasource.uid, DATASOURCE_VARIABLE, `${panel.title} uses the data source variable`)
    ids.add((panel as unknown as { id: number }).id)
    for (const target of panel.targets) {
      t.equal(target.datasource.uid, DATASOURCE_VARIABLE)
      const names = target.expr.match(/\brealtime_[a-z_]+/g) ?? []
      t.ok(names.length > 0, `${panel.title}: a query names a metric`)
      for (const name of names) {
        t.ok(exported.has(name), `${panel.title}: ${name} is exported`)
        used.add(name)
      }
      t.equal(count(target.expr, '('), count(target.expr, ')'), `${panel.title}: balanced parentheses`)
      t.equal(count(target.expr, '{'), count(target.expr, '}'), `${panel.title}: balanced braces`)
    }
  }
  t.equal(ids.size, dashboard.panels.length, 'panel ids are unique')
  for (const wanted of [
    'realtime_connections', 'realtime_frames_received_total', 'realtime_frames_sent_total', 'realtime_deliveries_total',
    'realtime_errors_total', 'realtime_action_duration_seconds_bucket', 'realtime_publish_duration_seconds_bucket',
    'realtime_adapter_up'
  ]) t.ok(used.has(wanted), `a panel shows ${wanted}`)
})

t.test('docs/observability.md lists every metric with its type and labels', async (t) => {
  const doc = await readFile(new URL('../docs/observability.md', import.meta.url), 'utf8')
  for (const [name, { type, labels }] of Object.entries(METRICS)) {
    const row = doc.split('\n').find((line) => line.startsWith(`| \`realtime_${name}\` |`))
    t.ok(row, `${name} has a row`)
    const cells = row!.split('|').map((cell) => cell.trim())
    t.equal(cells[2], type, `${name} type`)
    t.equal(cells[3], labels.map((label) => `\`${label}\``).join(', '), `${name} labels`)
  }
})

function count (text: string, char: string): number {
  return text.split(char).length - 1
}
