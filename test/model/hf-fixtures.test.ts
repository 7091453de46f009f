// Checkpoints made by transformers 5.17 itself (scripts/hf-fixtures.py, run once on the GPU machine, CPU
// torch): each folder loads with our reader and our logits match HF's forward on the saved input.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel, readFolderConfig, readSafetensors, safeToFloat64, type MambaLM } from '../../src/model/index.js';
import { relErr } from '../helpers.js';

const root = join(__dirname, '..', 'fixtures', 'hf');

/** Our f32 CPU logits of a folder on its saved input, and HF's. */
function compare(name: string, key = 'logits'): { ours: Float64Array; hf: Float64Array } {
  const dir = join(root, name);
  const saved = readSafetensors(join(dir, 'logits.safetensors')).tensors;
  const ids = saved.get('input_ids')!;
  const [B, L] = ids.shape as [number, number];
  const model = loadModel(dir, { device: 'cpu', dtype: 'f32' }) as MambaLM;
  const hf = saved.get(key)!;
  expect(hf.shape).toEqual([B, L, hf.shape[2]]);
  const ours = model.logits(Int32Array.from(ids.data as Int32Array), B, L);
  return { ours, hf: safeToFloat64(hf) };
}

describe('transformers fixtures', () => {
  it('were made by transformers and all six are there', () => {
    type Manifest = { transformers: string; fixtures: { name: string }[] };
    const manifest = JSON.parse(readFileSync(join(root, 'fixtures.json'), 'utf8')) as Manifest;
    expect(manifest.transformers).toMatch(/^5\./);
    expect(manifest.fixtures.map((f) => f.name)).toEqual(['tied', 'lm-head', 'sharded', 'bf16', 'f16', 'mamba-ssm']);
  });

  const f32: [string, string][] = [
    ['tied', 'hf'],
    ['lm-head', 'hf'],
    ['sharded', 'hf'],
    ['bf16', 'hf'],
    ['f16', 'hf'],
    ['mamba-ssm', 'mamba_ssm'],
  ];
  for (const [name, layout] of f32) {
    it(`${name}: layout ${layout}, our f32 logits = HF's f32 forward to < 1e-5`, () => {
      const p = readFolderConfig(join(root, name));
      expect(p.layout).toBe(layout);
      const { ours, hf } = compare(name);
      const e = relErr(ours, hf);
      expect(e).toBeLessThan(1e-5);
    });
  }

  it('lm-head: state_size 8, time_step_rank 6 and eps 1e-6 come through; the head is its own tensor', () => {
    const c = readFolderConfig(join(root, 'lm-head')).config;
    expect(c).toMatchObject({ d_model: 64, n_layer: 2, d_state: 8, dt_rank: 6, norm_epsilon: 1e-6 });
    expect(c).toMatchObject({ tie_embeddings: false, vocab_size: 16 });
  });

  it('sharded: the folder has no model.safetensors, only shards and the index', () => {
    expect(existsSync(join(root, 'sharded', 'model.safetensors'))).toBe(false);
    expect(existsSync(join(root, 'sharded', 'model.safetensors.index.json'))).toBe(true);
  });

  it('mamba-ssm: vocab_size 13 padded to 16 rows', () => {
    const c = readFolderConfig(join(root, 'mamba-ssm')).config;
    expect(c.vocab_size).toBe(13);
    expect(compare('mamba-ssm').ours.length).toBe(2 * 48 * 16);
  });

  it('bf16: our logits of the BF16 weights are within 2e-2 of HF computing in bf16', () => {
    const { ours, hf } = compare('bf16', 'logits_bf16');
    expect(relErr(ours, hf)).toBeLessThan(2e-2);
  });
});
