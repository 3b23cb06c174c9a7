/**
 * Bundles fastify-realtime/client (lib/client/index.ts) for browsers with esbuild: one ES module, no Node
 * import. `npm run build:client` writes examples/public/client.js, which the example page imports; the browser
 * test calls `bundleClient()` itself.
 *
 *   npx tsx examples/build-client.ts [outfile]
 */
import { writeFile } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build, type Metafile } from 'esbuild'

/** The client's entry point. */
export const clientEntry = fileURLToPath(new URL('../lib/client/index.ts', import.meta.url))
/** Where `npm run build:client` writes the bundle: beside the example page. */
export const defaultOutfile = fileURLToPath(new URL('./public/client.js', import.meta.url))

/** The bundle: its code, and esbuild's metafile (the inputs it holds, the imports it keeps). */
export interface ClientBundle { code: string, metafile: Metafile }

/** Bundles the client for browsers (ESM, ES2022, with an inline source map). In memory: writes nothing. */
export async function bundleClient (): Promise<ClientBundle> {
  const result = await build({
    entryPoints: [clientEntry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: 'inline',
    write: false,
    metafile: true,
    logLevel: 'silent'
  })
  return { code: result.outputFiles[0]!.text, metafile: result.metafile }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const outfile = process.argv[2] ?? defaultOutfile
  const { code } = await bundleClient()
  await writeFile(outfile, code)
  process.stdout.write(`client bundle: ${outfile} (${code.length} bytes)\n`)
}
