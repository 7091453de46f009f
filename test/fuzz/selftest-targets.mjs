// Targets that misbehave on purpose, so the fuzz test can check that the harness classifies each
// outcome: a raw exception, a hang, running out of memory, a disagreement, a clean refusal.
import { DnaDataError } from '../../dist/data/dna/errors.js';

const seed = (name) => [{ name, files: { 'x.bin': Buffer.from('seed') }, mutate: 'x.bin' }];
export const TARGETS = [
  {
    name: 'selftest-raw',
    seeds: () => seed('raw'),
    async run() {
      Buffer.alloc(4).readUInt32LE(8);
    },
  },
  {
    name: 'selftest-hang',
    seeds: () => seed('hang'),
    async run() {
      for (;;);
    },
  },
  {
    name: 'selftest-oom',
    seeds: () => seed('oom'),
    async run() {
      const keep = [];
      for (;;) keep.push(new Array(1e7).fill(keep.length + 0.5));
    },
  },
  {
    name: 'selftest-disagree',
    seeds: () => seed('disagree'),
    async run() {
      return 1;
    },
    check: () => 'the reference says 2',
  },
  {
    name: 'selftest-clean',
    seeds: () => seed('clean'),
    async run() {
      throw new DnaDataError('x.bin: refused');
    },
  },
];
