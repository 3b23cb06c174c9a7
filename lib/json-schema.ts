/**
 * Whether a TypeBox / JSON Schema can be copied into a document as plain JSON (AsyncAPI payloads): no references
 * (`$ref`, `$defs`: a `Type.Ref` or `Type.Cyclic` schema), no cycle, only JSON `type`s, and only values JSON can
 * carry. Pure functions.
 */

/** The `type`s JSON values have. */
const JSON_TYPES = new Set(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null'])
/** Keywords whose value maps names (not keywords) to schemas. */
const NAMED_SCHEMAS = new Set(['properties', 'patternProperties', 'dependentSchemas'])
/** Keywords whose value is data (instances), not a schema. */
const DATA_KEYWORDS = new Set(['const', 'enum', 'default', 'examples'])
/** Keywords that refer to another schema (by URI or anchor). */
const REFERENCES = new Set(['$ref', '$defs', 'definitions', '$dynamicRef', '$recursiveRef', '$anchor', '$dynamicAnchor'])

/**
 * The first reason `schema` cannot be copied into a document as plain JSON, or `undefined` when it can. The
 * reason starts with the JSON pointer of the offending part (`#/properties/a/type is "undefined", ...`).
 * Subschemas shared by several parents are fine; only a cycle is refused.
 */
export function jsonSchemaProblem (schema: unknown): string | undefined {
  return schemaProblem(schema, '#', new Set())
}

/** `ancestors` holds the objects on the path from the root, to detect cycles. */
function schemaProblem (schema: unknown, at: string, ancestors: Set<object>): string | undefined {
  if (typeof schema === 'boolean') return undefined
  if (!isPlainObject(schema)) return `${at} is not a schema object`
  if (ancestors.has(schema)) return `${at} refers back to an enclosing schema (a cycle)`
  ancestors.add(schema)
  try {
    for (const [keyword, value] of Object.entries(schema)) {
      const here = `${at}/${keyword}`
      if (REFERENCES.has(keyword)) return `${here}: references are not supported (a Type.Ref or Type.Cyclic schema); inline the schema`
      if (keyword === 'type' && !isJsonType(value)) return `${here} is ${JSON.stringify(String(value))}, a type with no JSON form`
      const problem = DATA_KEYWORDS.has(keyword)
        ? dataProblem(value, here, ancestors)
        : NAMED_SCHEMAS.has(keyword) && isPlainObject(value)
          ? namedProblem(value, here, ancestors)
          : subschemaProblem(value, here, ancestors)
      if (problem !== undefined) return problem
    }
    return undefined
  } finally {
    ancestors.delete(schema)
  }
}

function namedProblem (value: Record<string, unknown>, at: string, ancestors: Set<object>): string | undefined {
  for (const [name, schema] of Object.entries(value)) {
    const problem = schemaProblem(schema, `${at}/${name}`, ancestors)
    if (problem !== undefined) return problem
  }
  return undefined
}

/** A keyword value that holds a schema, an array of schemas, or plain data (`required`, `pattern`, `minimum`...). */
function subschemaProblem (value: unknown, at: string, ancestors: Set<object>): string | undefined {
  if (isPlainObject(value)) return schemaProblem(value, at, ancestors)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i]
      const problem = isPlainObject(item) ? schemaProblem(item, `${at}/${i}`, ancestors) : dataProblem(item, `${at}/${i}`, ancestors)
      if (problem !== undefined) return problem
    }
    return undefined
  }
  return dataProblem(value, at, ancestors)
}

/** A data value (`const`, `enum`, `default`...) must be JSON as it is: no function, bigint, NaN, Date or cycle. */
function dataProblem (value: unknown, at: string, ancestors: Set<object>): string | undefined {
  if (value === null || value === undefined || typeof value === 'string' || typeof value === 'boolean') return undefined
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${at} is ${value}, which JSON cannot carry`
  if (typeof value !== 'object') return `${at} is a ${typeof value}, which JSON cannot carry`
  if (!Array.isArray(value) && !isPlainObject(value)) {
    return `${at} is a ${(value as object).constructor?.name ?? 'non-plain object'}, which JSON cannot carry`
  }
  if (ancestors.has(value)) return `${at} refers back to an enclosing value (a cycle)`
  ancestors.add(value)
  try {
    for (const [key, item] of Object.entries(value)) {
      const problem = dataProblem(item, `${at}/${key}`, ancestors)
      if (problem !== undefined) return problem
    }
    return undefined
  } finally {
    ancestors.delete(value)
  }
}

function isJsonType (value: unknown): boolean {
  if (typeof value === 'string') return JSON_TYPES.has(value)
  return Array.isArray(value) && value.length > 0 && value.every((type) => typeof type === 'string' && JSON_TYPES.has(type))
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null
}
