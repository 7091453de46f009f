// The contract between data sources (src/data/dna, src/data/audio) and the trainer (src/train).
// Tokens are bytes: the DNA vocabulary and the 256 mu-law audio levels both fit in a Uint8Array.
import type { Rng } from '../util/rng.js';

export type Domain = 'dna' | 'audio';
/** What a model learns: next-token modelling (lm) or sequence classification (classify). */
export type Task = 'lm' | 'classify';

/** A window of consecutive tokens from one record/file (never crossing a record boundary). */
export interface TokenWindow {
  tokens: Uint8Array;
  /** record or file name, for logs and per-record predictions */
  source: string;
  /** 0-based offset of tokens[0] in the record (in tokens) */
  start: number;
}

/** Unlabelled token data for next-token modelling. */
export interface WindowSource {
  readonly domain: Domain;
  readonly vocabSize: number;
  /** human-readable summary, e.g. "H. pylori 26695: 1 record, 1,667,867 bases" */
  describe(): string;
  /** length of the longest record, in tokens: the longest window that can be drawn */
  maxWindowLength(): number;
  /** total tokens */
  totalTokens(): number;
  /** a uniformly placed window of exactly `length` tokens; records shorter than `length` are skipped */
  randomWindow(length: number, rng: Rng): Promise<TokenWindow>;
  /** non-overlapping windows of exactly `length` tokens in order (short tails dropped), for evaluation */
  sequentialWindows(length: number): AsyncIterable<TokenWindow>;
}

/** One labelled example (a window of a genome of a species, or a clip of a spoken digit). */
export interface LabelledExample extends TokenWindow {
  label: number;
}

/** Labelled data for classification, already split by source (strain, speaker/voice). */
export interface LabelledSource {
  readonly domain: Domain;
  readonly vocabSize: number;
  readonly classes: readonly string[];
  describe(): string;
  /** class-balanced random example of `length` tokens */
  randomExample(length: number, rng: Rng): Promise<LabelledExample>;
  /** every example of the split once (for clips) or `perSource` windows per source (for genomes), in a fixed order */
  evalExamples(length: number, perSource?: number): AsyncIterable<LabelledExample>;
}

export type Split = 'train' | 'valid' | 'test';
