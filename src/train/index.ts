export * from './optim.js';
export * from './trainer.js';
export * from './memory.js';
export * from './position-loss.js';
