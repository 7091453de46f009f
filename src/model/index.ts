export * from './config.js';
export * from './model.js';
export * from './checkpoint.js';
export * from './hf-config.js';
export * from './hf-folder.js';
export * from './tokenizer-json.js';
