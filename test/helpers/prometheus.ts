/**
 * Reads a Prometheus text exposition (what a scrape returns) with parse-prometheus-text-format, and looks up
 * samples by metric name and labels.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format'

/** One metric family as the parser returns it (values are strings, as in prom2json). */
export interface Family {
  name: string
  help: string
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED'
  metrics: Array<{ value?: string, labels?: Record<string, string>, buckets?: Record<string, string>, count?: string, sum?: string }>
}

/** A parsed scrape: its families by name, and the text (for labelled histograms, see `histogramCount`). */
export interface Scrape { families: Map<string, Family>, text: string }

/** Parses a scrape. */
export function parseMetrics (text: string): Scrape {
  const families = parsePrometheusTextFormat(text) as Family[]
  return { families: new Map(families.map((family) => [family.name, family])), text }
}

function series ({ families }: Scrape, name: string, labels: Record<string, string>): Family['metrics'][number] {
  const family = families.get(name)
  if (family === undefined) throw new Error(`no metric ${name}`)
  const wanted = JSON.stringify(Object.entries(labels).sort())
  const found = family.metrics.find((m) => JSON.stringify(Object.entries(m.labels ?? {}).sort()) === wanted)
  if (found === undefined) throw new Error(`no series ${name}${JSON.stringify(labels)}`)
  return found
}

/** The value of the counter or gauge series `name{labels}` (exactly these labels). @throws when absent */
export function sample (scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  return Number(series(scrape, name, labels).value)
}

/**
 * The observation count of the histogram series `name{labels}`, read from its `name_count` sample line: the
 * parser folds the series of a labelled histogram into one and drops their counts. Label values here are plain
 * (no quote or backslash to escape). @throws when absent
 */
export function histogramCount ({ text }: Scrape, name: string, labels: Record<string, string> = {}): number {
  const entries = Object.entries(labels)
  const selector = entries.length === 0 ? '' : `{${entries.map(([key, value]) => `${key}="${value}"`).join(',')}}`
  const line = text.split('\n').find((l) => l.startsWith(`${name}_count${selector} `))
  if (line === undefined) throw new Error(`no histogram series ${name}${selector}`)
  return Number(line.slice(line.lastIndexOf(' ') + 1))
}

function sampleLines (text: string): string[] {
  return text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))
}

/** Number of sample lines of the scrape (each bucket, sum and count of a histogram series counts). */
export function seriesCount ({ text }: Scrape): number {
  return sampleLines(text).length
}

/** Every label name of any sample line, but histograms' `le` (label values here hold no `="`). */
export function labelNames ({ text }: Scrape): Set<string> {
  const names = new Set<string>()
  for (const line of sampleLines(text)) {
    for (const [, name] of line.slice(0, line.lastIndexOf(' ')).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
      if (name !== 'le') names.add(name!)
    }
  }
  return names
}
