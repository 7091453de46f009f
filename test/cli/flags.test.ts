// One behaviour per flag in both CLIs: every command the two share has the same options (name, short
// form, whether it takes a value, default), except the domain-specific ones listed below with why; help
// text of one domain does not talk about the other's data.
import type { Command, Option } from 'commander';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../../src/cli/common.js';
import { dnaRegistrars } from '../../src/cli/dna.js';
import { audioRegistrars } from '../../src/cli/audio.js';

const dna = createProgram({ domain: 'dna', name: 'mamba-dna' }, 'dna', dnaRegistrars);
const audio = createProgram({ domain: 'audio', name: 'mamba-audio' }, 'audio', audioRegistrars);

/** Options that exist in one CLI only, per command, and why. Anything else must match. */
const DOMAIN_SPECIFIC: Record<string, { dna?: string[]; audio?: string[] }> = {
  // audio models work at a sample rate; DNA has none
  train: { audio: ['--rate'] },
  // the DNA prompt is a region of a FASTA (--data); the audio prompt a WAV, its length in seconds
  generate: { dna: ['--data'], audio: ['--seconds', '--prompt-seconds'] },
  // DNA keeps soft-masking as extra tokens; audio picks a rate, a companding and a headerless layout
  tokenize: { dna: ['--keep-case'], audio: ['--rate', '--encoding', '--raw'] },
  // the audio recipes synthesize speech with espeak-ng voices
  'dataset build': {
    dna: ['--maf'],
    audio: ['--voices', '--renditions', '--seed', '--format', '--source', '--max-seconds', '--excerpt-seconds'],
  },
  // DNA scores regions of a genome (BED, both strands, a bedGraph per base); audio scores whole WAVs in time bins
  score: { dna: ['--bed', '--strand', '--per-base', '--decimals'], audio: ['--bin-seconds', '--rate'] },
  // DNA embeds records or BED intervals (both strands, fixed windows in bases); audio files or windows in seconds
  embed: { dna: ['--bed', '--strand', '--window'], audio: ['--window-seconds', '--max-window', '--rate'] },
};

/** Commands of one CLI only. */
const DOMAIN_COMMANDS = { dna: ['index', 'region', 'variants'], audio: ['detokenize'] };

function commands(program: Command, prefix = ''): Map<string, Command> {
  const out = new Map<string, Command>();
  for (const c of program.commands) {
    const name = `${prefix}${c.name()}`;
    out.set(name, c);
    for (const [k, v] of commands(c, `${name} `)) out.set(k, v);
  }
  return out;
}

/** --help as printed, with the example block added after the options. */
function fullHelp(c: Command): string {
  let text = '';
  c.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  c.outputHelp();
  return text;
}

const shape = (o: Option) => ({
  short: o.short ?? null,
  takesValue: o.required || o.optional,
  default: o.defaultValue ?? null,
});

describe('the two CLIs share their flags', () => {
  const d = commands(dna),
    a = commands(audio);

  it('have the same commands, apart from the listed domain-specific ones', () => {
    const onlyDna = [...d.keys()].filter((k) => !a.has(k)).sort();
    const onlyAudio = [...a.keys()].filter((k) => !d.has(k)).sort();
    expect(onlyDna).toEqual(DOMAIN_COMMANDS.dna);
    expect(onlyAudio).toEqual(DOMAIN_COMMANDS.audio);
    expect(d.has('dataset list') && a.has('dataset list')).toBe(true);
  });

  for (const name of [...d.keys()].filter((k) => a.has(k))) {
    it(`${name}: same options in both`, () => {
      const spec = DOMAIN_SPECIFIC[name] ?? {};
      const opts = (c: Command, skip: string[] = []) =>
        new Map(c.options.filter((o) => !skip.includes(o.long!)).map((o) => [o.long!, shape(o)]));
      const od = opts(d.get(name)!, spec.dna),
        oa = opts(a.get(name)!, spec.audio);
      expect(Object.fromEntries(od), `${name}: options of mamba-dna vs mamba-audio`).toEqual(Object.fromEntries(oa));
      // the listed domain-specific options exist (a stale list fails too)
      for (const f of spec.dna ?? [])
        expect(
          d.get(name)!.options.some((o) => o.long === f),
          `mamba-dna ${name} ${f}`,
        ).toBe(true);
      for (const f of spec.audio ?? [])
        expect(
          a.get(name)!.options.some((o) => o.long === f),
          `mamba-audio ${name} ${f}`,
        ).toBe(true);
    });
  }

  it('every command that writes an output file takes -f/--force', () => {
    const writers = {
      dna: ['train', 'generate', 'tokenize', 'region', 'dataset build'],
      audio: ['train', 'generate', 'tokenize', 'detokenize', 'dataset build'],
    };
    for (const [cmds, list] of [
      [d, writers.dna],
      [a, writers.audio],
    ] as const) {
      for (const n of list) {
        const f = cmds.get(n)!.options.find((o) => o.long === '--force');
        expect(f?.short, n).toBe('-f');
      }
    }
  });

  it('help text, examples included, does not leak across domains', () => {
    for (const [name, c] of d)
      expect(fullHelp(c), `mamba-dna ${name}`).not.toMatch(/\bWAV\b|\baudio\b|sample rate|speaker|mamba-audio/i);
    for (const [name, c] of a)
      expect(fullHelp(c), `mamba-audio ${name}`).not.toMatch(/genome|FASTA|\bbases?\b|samtools|strain|mamba-dna/i);
  });

  it('every help example of a shared command names a flag the command has', () => {
    for (const [cli, cmds] of [
      ['mamba-dna', d],
      ['mamba-audio', a],
    ] as const) {
      for (const [name, c] of cmds) {
        if (c.commands.length) continue; // a group's examples run its subcommands
        const examples = fullHelp(c).split('Examples:')[1] ?? '';
        for (const line of examples.split('\n').filter((l) => l.includes(`$ ${cli} ${name} `))) {
          for (const flag of line
            .split('#')[0]!
            .split('|')[0]!
            .match(/(?<=\s)--?[a-z][a-z-]*/g) ?? []) {
            expect(
              c.options.some((o) => o.long === flag || o.short === flag),
              `${cli} ${name} example uses ${flag}: ${line}`,
            ).toBe(true);
          }
        }
      }
    }
  });
});
