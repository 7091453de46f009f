export * from './optim.js';
export * from './trainer.js';
export * from './memory.js';
export * from './position-loss.js';
export * from './task.js';
export * from './evaluate.js';
export * from './checkpoints.js';
export * from './distributed/index.js';
