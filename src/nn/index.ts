export * from './param.js';
export * from './layers.js';
export * from './mixer.js';
export * from './block.js';
export * from './heads.js';
