// Small in-memory data sources (token arrays held in memory) implementing the data contract: for tests,
// examples, and data produced on the fly.
import type { Domain, LabelledExample, LabelledSource, TokenWindow, WindowSource } from '../data/types.js';
import type { Rng } from '../util/rng.js';

export class MemoryWindowSource implements WindowSource {
  readonly domain: Domain;
  readonly vocabSize: number;
  readonly records: { name: string; tokens: Uint8Array }[];

  constructor(records: { name: string; tokens: Uint8Array }[], vocabSize: number, domain: Domain = 'dna') {
    if (records.length === 0) throw new Error('MemoryWindowSource: no records');
    this.records = records;
    this.vocabSize = vocabSize;
    this.domain = domain;
  }

  describe(): string {
    return `in-memory: ${this.records.length} record(s), ${this.totalTokens()} tokens`;
  }

  maxWindowLength(): number {
    return Math.max(...this.records.map((r) => r.tokens.length));
  }

  totalTokens(): number {
    return this.records.reduce((s, r) => s + r.tokens.length, 0);
  }

  async randomWindow(length: number, rng: Rng): Promise<TokenWindow> {
    const ok = this.records.filter((r) => r.tokens.length >= length);
    if (ok.length === 0)
      throw new Error(`no record holds a window of ${length} tokens (longest: ${this.maxWindowLength()})`);
    // uniform over window positions
    const counts = ok.map((r) => r.tokens.length - length + 1);
    let k = rng.int(counts.reduce((a, b) => a + b, 0));
    let i = 0;
    while (k >= counts[i]!) k -= counts[i++]!;
    const r = ok[i]!;
    return { tokens: r.tokens.slice(k, k + length), source: r.name, start: k };
  }

  async *sequentialWindows(length: number): AsyncIterable<TokenWindow> {
    for (const r of this.records) {
      for (let s = 0; s + length <= r.tokens.length; s += length)
        yield { tokens: r.tokens.slice(s, s + length), source: r.name, start: s };
    }
  }
}

export class MemoryLabelledSource implements LabelledSource {
  readonly domain: Domain;
  readonly vocabSize: number;
  readonly classes: readonly string[];
  readonly items: { name: string; label: number; tokens: Uint8Array }[];

  constructor(
    items: { name: string; label: number; tokens: Uint8Array }[],
    classes: string[],
    vocabSize: number,
    domain: Domain = 'dna',
  ) {
    this.items = items;
    this.classes = classes;
    this.vocabSize = vocabSize;
    this.domain = domain;
  }

  describe(): string {
    return `in-memory: ${this.items.length} sources, ${this.classes.length} classes`;
  }

  async randomExample(length: number, rng: Rng): Promise<LabelledExample> {
    const label = rng.int(this.classes.length);
    const ok = this.items.filter((x) => x.label === label && x.tokens.length >= length);
    if (ok.length === 0) throw new Error(`class ${this.classes[label]} has no source of ${length} tokens`);
    const it = ok[rng.int(ok.length)]!;
    const s = rng.int(it.tokens.length - length + 1);
    return { tokens: it.tokens.slice(s, s + length), source: it.name, start: s, label };
  }

  async *evalExamples(length: number, perSource = 1): AsyncIterable<LabelledExample> {
    for (const it of this.items) {
      const n = Math.floor(it.tokens.length / length);
      for (let k = 0; k < Math.min(n, perSource); k++) {
        yield {
          tokens: it.tokens.slice(k * length, (k + 1) * length),
          source: it.name,
          start: k * length,
          label: it.label,
        };
      }
    }
  }
}
