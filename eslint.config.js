import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'node_modules/**', '.tap/**', 'coverage/**', 'test-artifacts/**', 'examples/public/*.js', 'docs/**']
  }),
  {
    // TypeBox idiom: a schema value and its static type share one name (`const JoinFrame = Type.Object(...)`,
    // `type JoinFrame = Static<typeof JoinFrame>`).
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  }
]
