// The checkpoint commands as a user runs them (child processes; needs dist/): convert between layouts,
// info on foreign folders, train --init/--config from a transformers folder, and the one-line refusals.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(__dirname, '..', '..');
const fixtures = join(root, 'test', 'fixtures', 'hf');

function run(cli: 'dna' | 'audio', args: string[], cwd: string) {
  const r = spawnSync(process.execPath, [join(root, 'bin', `mamba-${cli}.js`), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, MAMBA_NUM_THREADS: '1' },
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let dir: string;
beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'cli', 'dna.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  dir = mkdtempSync(join(tmpdir(), 'mamba-convert-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('convert and foreign folders', () => {
  it('convert --help shows an example in both CLIs', () => {
    for (const cli of ['dna', 'audio'] as const) {
      const r = run(cli, ['convert', '--help'], dir);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`\\$ mamba-${cli} convert runs/my-run exported --layout hf --dtype bf16`));
    }
  });

  it('sharded HF -> mamba_ssm in bf16 -> ours, each read back bit for bit; info says where each came from', () => {
    const a = join(dir, 'ssm'),
      b = join(dir, 'ours');
    let r = run('dna', ['convert', join(fixtures, 'sharded'), a, '--layout', 'mamba_ssm', '--dtype', 'bf16'], dir);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/\(hf: transformers 5\.17\.0 MambaForCausalLM\) -> .*ssm \(mamba_ssm, BF16\): 23 tensors/);
    expect(r.out).toMatch(/MiB, read back bit for bit/);
    const written = JSON.parse(readFileSync(join(a, 'config.json'), 'utf8'));
    expect(written).toMatchObject({ d_model: 64, n_layer: 2, vocab_size: 16 });
    r = run('dna', ['convert', a, b], dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/-> .*ours \(ours, BF16\): 23 tensors/);
    r = run('dna', ['info', '--checkpoint', join(fixtures, 'sharded')], dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/model-00001-of-00005\.safetensors, .*\(F32\)/);
    expect(r.out).toMatch(/layout: hf, from transformers 5\.17\.0 MambaForCausalLM/);
    r = run('dna', ['info', '--checkpoint', a], dir);
    expect(r.out).toMatch(/layout: mamba_ssm, from mamba-dna \(written as mamba_ssm\)/);
    // a foreign folder names no domain: it is read as the CLI's
    r = run('audio', ['info', '--checkpoint', join(fixtures, 'tied'), '--json'], dir);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ domain: 'audio', layout: 'hf' });
    r = run('dna', ['convert', join(fixtures, 'tied'), b], dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/already exists and is not an empty folder; use --force/);
  });

  it('train --config and --init take a transformers folder (fine-tuning an imported checkpoint)', () => {
    const out = join(dir, 'ft');
    const data = join(root, 'datasets', 'dna', 'h_pylori', 'G27.fa.gz');
    const tied = join(fixtures, 'tied');
    const r = run(
      'dna',
      [
        'train',
        '--config',
        join(tied, 'config.json'),
        '--init',
        tied,
        '--data',
        data,
        '--steps',
        '2',
        '--seq-len',
        '64',
        '--batch',
        '2',
        '--eval-windows',
        '2',
        '--device',
        'cpu',
        '--out',
        out,
      ],
      dir,
    );
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/initialised 22 backbone tensors from .*tied/);
    expect(r.err).toMatch(/d_model 64, 2 layers/);
    const written = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(written).toMatchObject({ model_type: 'mamba', hidden_size: 64 });
  });

  it('bad config bounds, small vocabularies and pickles: one line, exit 1, no stack', () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ d_model: 64, n_layer: 1e308 }));
    let r = run('dna', ['train', '--config', bad, '--steps', '1', '--device', 'cpu', '--out', join(dir, 'never')], dir);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(`mamba-dna: error: --config ${bad}: n_layer is too large: got 1e+308, allowed: 1..1024`);
    expect(existsSync(join(dir, 'never'))).toBe(false); // refused before the run folder is made

    const small = join(dir, 'small');
    mkdirSync(small);
    const conf = JSON.parse(readFileSync(join(fixtures, 'mamba-ssm', 'config.json'), 'utf8'));
    writeFileSync(join(small, 'config.json'), JSON.stringify({ ...conf, vocab_size: 13 }));
    writeFileSync(join(small, 'model.safetensors'), readFileSync(join(fixtures, 'mamba-ssm', 'model.safetensors')));
    r = run('dna', ['eval', '--checkpoint', small, '--windows', '1', '--device', 'cpu'], dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/its vocabulary has 13 tokens, DNA data uses ids 0\.\.15 \(vocab_size 16\)/);

    const pickle = join(dir, 'pickle');
    mkdirSync(pickle);
    writeFileSync(join(pickle, 'config.json'), readFileSync(join(fixtures, 'tied', 'config.json')));
    writeFileSync(join(pickle, 'pytorch_model.bin'), 'not read');
    r = run('dna', ['info', '--checkpoint', pickle], dir);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/pytorch_model\.bin: PyTorch pickles are not read .* save_file\(/);
    expect(r.err.split('\n').filter(Boolean)).toHaveLength(1);
  });
});
