// parse-prometheus-text-format 1.1 ships no types: it exports one function, text -> array of metric families.
declare module 'parse-prometheus-text-format' {
  export default function parsePrometheusTextFormat (text: string): unknown[]
}
