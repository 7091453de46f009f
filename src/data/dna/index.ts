// DNA data: FASTA sources (streamed, indexed, bgzip), regions, tokens, window samplers, labelled genome sets.
export * from './errors.js';
export * from './tokenizer.js';
export * from './bgzf.js';
export * from './fai.js';
export * from './indexed.js';
export * from './regions.js';
export * from './stream.js';
export * from './source.js';
export * from './genome-set.js';
export * from './datasets.js';
export * from './maf.js';
export * from './fasta-reader.js';
