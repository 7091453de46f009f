// Every workflow command has --help with an example and states its conventions (units, sign, coordinates).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'mamba-wf-help-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('workflow commands --help', () => {
  const cases: [tool: 'dna' | 'audio', cmd: string, says: RegExp][] = [
    ['dna', 'score', /log2 P\(base \| up to N bases of left context\) in bits: <= 0/],
    ['dna', 'variants', /log2 P\(alt window\) - log2 P\(ref window\)/],
    ['dna', 'embed', /embed\(x\) == embed\(RC\(x\)\)/],
    ['audio', 'score', /bits per sample \(-log2 P\)/],
    ['audio', 'embed', /one vector per WAV file/],
  ];
  for (const [tool, cmd, says] of cases) {
    it(`mamba-${tool} ${cmd}`, () => {
      const r = cli(tool, [cmd, '--help'], dir);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/Examples:/);
      expect(r.out.replace(/\s+/g, ' ')).toMatch(says);
    });
  }
});
