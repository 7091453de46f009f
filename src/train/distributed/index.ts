// Multi-GPU pieces that run on the CPU: data sharding, rendezvous parsing, context-parallel combine.
export * from './shard.js';
export * from './context-parallel.js';
