// Types of cluster-key-slot 1.x (the hash slot function ioredis uses), which ships none.
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0..16383) of `key`: CRC16 of its hash tag (`{...}`) if any, else of the whole key. */
  export default function calculateSlot (key: string | Buffer): number
}
