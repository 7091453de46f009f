// The library: everything the CLIs do, importable with types. Domain data lives under two namespaces
// (their tokenizers share names such as decodeTokens), the rest is flat.
export * from './backend/index.js';
export * from './nn/index.js';
export * from './model/index.js';
export * from './train/index.js';
export * from './generate/index.js';
export * from './data/types.js';
export { Rng } from './util/rng.js';
export { lineChart, htmlReport, type Series, type ChartOptions } from './report/svg.js';
export * as dna from './data/dna/index.js';
export * as audio from './data/audio/index.js';
