// Model folders of the ecosystem: config.json bounds (issue 13.4), the three layouts (ours, transformers,
// mamba_ssm) written and read back, shards, BF16/F16, pickles refused, vocabularies, tokenizer.json.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DNA_VOCAB, encodeBases } from '../../src/data/dna/tokenizer.js';
import {
  CheckpointError,
  MambaClassifier,
  MambaLM,
  checkVocabularyFits,
  copyBackbone,
  countParameters,
  f16BitsToF32,
  f32ToF16Bits,
  loadModel,
  makeConfig,
  modelTensors,
  readConfig,
  readFolderConfig,
  readModelConfigFile,
  saveModel,
  tokenizerJSON,
  writeFolder,
  writeSafetensors,
  type MambaConfig,
  type SafeTensor,
} from '../../src/model/index.js';
import { relErr } from '../helpers.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'mamba-hf-'));
}

function writeJSON(path: string, obj: unknown): void {
  writeFileSync(path, JSON.stringify(obj));
}

/** A model whose every tensor is off its init (biases, A, D, norms), so a misplaced tensor shows in the logits. */
function randomised(config: MambaConfig, seed: number): MambaLM {
  const m = MambaLM.create(config, { seed });
  let k = 1;
  for (const p of m.parameters()) {
    const d = p.value.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i]! += 0.05 * Math.sin(k++ * 0.7);
  }
  m.invalidate();
  return m;
}

const IDS = Int32Array.from({ length: 2 * 24 }, (_, i) => (i * 7 + 3) % 13);

function logitsOf(m: MambaLM): Float64Array {
  return m.logits(IDS, 2, 24);
}

describe('config.json bounds (issue 13.4)', () => {
  const base = { d_model: 16, n_layer: 2, domain: 'dna', task: 'lm' };
  const cases: [string, number, RegExp][] = [
    ['n_layer', 1e308, /n_layer is too large: got 1e\+308, allowed: 1\.\.1024/],
    ['d_model', 2 ** 53, /d_model is too large: got 9007199254740992, allowed: 1\.\.65536/],
    ['d_conv', 2 ** 31, /d_conv is too large: got 2147483648, allowed: 1\.\.64/],
    ['expand', 2 ** 31, /expand is too large: got 2147483648, allowed: 1\.\.16/],
    ['d_state', 0, /d_state must be a positive integer, got 0 \(allowed: 1\.\.1024\)/],
    ['vocab_size', 2.5, /vocab_size must be a positive integer, got 2\.5/],
  ];
  for (const [field, value, msg] of cases) {
    it(`${field} ${value}: one line naming the file, the field, the value and the range, before any allocation`, () => {
      const dir = tmp();
      writeJSON(join(dir, 'config.json'), { ...base, [field]: value });
      const t0 = Date.now();
      expect(() => loadModel(dir)).toThrow(CheckpointError);
      const file = join(dir, 'config.json').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      expect(() => loadModel(dir)).toThrow(new RegExp(`${file}: ${msg.source}`));
      expect(() => readModelConfigFile(join(dir, 'config.json'))).toThrow(msg); // train --config's path
      expect(Date.now() - t0).toBeLessThan(2000);
    });
  }

  it('a total parameter count past 2^35 is refused before allocating, whatever the fields', () => {
    const dir = tmp();
    writeJSON(join(dir, 'config.json'), { ...base, d_model: 65536, n_layer: 1024, expand: 16 });
    expect(() => loadModel(dir)).toThrow(/describes 2\.\d+e\+14 parameters, allowed: at most 2\^35/);
    const tiny = makeConfig('tiny');
    expect(countParameters(tiny)).toBe(MambaLM.create(tiny).numParameters());
    const cls = makeConfig('tiny', { task: 'classify', num_classes: 3, tie_embeddings: false });
    expect(countParameters(cls)).toBe(MambaClassifier.create(cls).numParameters());
  });

  it('train --config: a hand-written partial config keeps its fields; a run or HF config.json works too', () => {
    const dir = tmp();
    const f = join(dir, 'my.json');
    writeJSON(f, { d_model: 48, n_layer: 3, d_state: 8, norm_epsilon: 1e-6, dt_rank: 5 });
    const want = { d_model: 48, n_layer: 3, d_state: 8, norm_epsilon: 1e-6, dt_rank: 5 };
    expect(readModelConfigFile(f)).toMatchObject(want);
    saveModel(dir, MambaLM.create(makeConfig({ d_model: 24, n_layer: 1, d_conv: 3 })));
    expect(readModelConfigFile(join(dir, 'config.json'))).toMatchObject({ d_model: 24, n_layer: 1, d_conv: 3 });
    expect(Object.keys(readModelConfigFile(join(dir, 'config.json')))).not.toContain('hidden_size');
  });

  it('HF and mamba_ssm keys are bounded under their own names', () => {
    const dir = tmp();
    writeJSON(join(dir, 'config.json'), { model_type: 'mamba', hidden_size: 2 ** 53, num_hidden_layers: 2 });
    expect(() => readConfig(dir)).toThrow(/json: hidden_size is too large: got 9007199254740992, allowed: 1\.\.65536/);
    const hf = { model_type: 'mamba', hidden_size: 64, num_hidden_layers: 2 };
    writeJSON(join(dir, 'config.json'), { ...hf, conv_kernel: 2 ** 31 });
    expect(() => readConfig(dir)).toThrow(/conv_kernel is too large: got 2147483648, allowed: 1\.\.64/);
    writeJSON(join(dir, 'config.json'), { d_model: 64, n_layer: 2, ssm_cfg: { expand: 2 ** 31 } });
    expect(() => readConfig(dir)).toThrow(/expand is too large: got 2147483648, allowed: 1\.\.16/);
    writeJSON(join(dir, 'config.json'), { model_type: 'mamba2', hidden_size: 64, num_hidden_layers: 2 });
    expect(() => readConfig(dir)).toThrow(/model_type is "mamba2", allowed: "mamba"/);
  });
});

describe('run folders for transformers', () => {
  it("config.json carries our fields, transformers' keys with the same values, and mamba_ssm's", () => {
    const dir = tmp();
    const c = makeConfig({ d_model: 48, n_layer: 3, d_state: 8, dt_rank: 5 }, { norm_epsilon: 1e-6 });
    c.tie_embeddings = false;
    saveModel(dir, MambaLM.create(c));
    const j = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(j).toMatchObject({
      model_type: 'mamba',
      architectures: ['MambaForCausalLM'],
      hidden_size: 48,
      num_hidden_layers: 3,
      state_size: 8,
      conv_kernel: 4,
      expand: 2,
      intermediate_size: 96,
      time_step_rank: 5,
      layer_norm_epsilon: 1e-6,
      use_bias: false,
      use_conv_bias: true,
      hidden_act: 'silu',
      vocab_size: 16,
      tie_word_embeddings: false,
      residual_in_fp32: true,
      d_model: 48,
      n_layer: 3,
      d_state: 8,
      domain: 'dna',
      task: 'lm',
      ssm_cfg: { d_state: 8, dt_rank: 5 },
    });
    expect(readFolderConfig(dir).layout).toBe('ours');
    expect(readConfig(dir)).toEqual(c);
  });

  it('the data vocabulary survives when the embedding is padded (HF vocab_size counts rows)', () => {
    const dir = tmp();
    const c = makeConfig({ d_model: 16, n_layer: 1, vocab_size: 13, pad_vocab_size_multiple: 8 });
    saveModel(dir, MambaLM.create(c));
    const j = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(j.vocab_size).toBe(16);
    expect(j.mamba_seq.vocab_size).toBe(13);
    expect(readConfig(dir)).toEqual(c);
  });

  it('classifier folders export the backbone for MambaModel and describe the head', () => {
    const dir = tmp();
    const c = makeConfig('tiny', { task: 'classify', num_classes: 3, pooling: 'last' });
    saveModel(dir, MambaClassifier.create(c));
    const j = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(j.architectures).toEqual(['MambaModel']);
    expect(j.mamba_seq.head).toMatchObject({ type: 'classifier', pooling: 'last', num_classes: 3 });
    expect(j.mamba_seq.head.tensors).toEqual(['classifier.weight', 'classifier.bias']);
    expect(readConfig(dir)).toEqual(c);
  });

  it('tokenizer.json maps DNA text to our ids (a small interpreter of its normalizer and WordLevel model)', () => {
    type Step = { pattern: { String?: string; Regex?: string }; content: string };
    type TJ = {
      normalizer: { normalizers: Step[] };
      model: { vocab: Record<string, number> };
      added_tokens: { id: number; content: string }[];
    };
    const tj = tokenizerJSON('dna') as TJ;
    DNA_VOCAB.forEach((sym, id) => expect(tj.model.vocab[sym]).toBe(id));
    const specials = tj.added_tokens.map((t) => [t.id, t.content]);
    expect(specials).toEqual([
      [0, '<pad>'],
      [1, '<bos>'],
      [2, '<eos>'],
      [3, '<mask>'],
    ]);
    const text = 'ACGTN acgtn\nRYSWKMBDHV rykm';
    let s = text;
    for (const n of tj.normalizer.normalizers) {
      s = s.replace(new RegExp(n.pattern.String ?? n.pattern.Regex!, 'g'), n.content);
    }
    const ids = [...s].map((ch) => tj.model.vocab[ch]);
    expect(ids).toEqual(Array.from(encodeBases(new TextEncoder().encode(text.replace(/\s/g, '')))));
    const audio = tokenizerJSON('audio') as { model: { vocab: Record<string, number> } };
    for (let i = 0; i < 256; i++) expect(audio.model.vocab[String(i)]).toBe(i);
  });
});

describe('layouts read back', () => {
  const c = makeConfig({ d_model: 32, n_layer: 2, d_state: 8, tie_embeddings: false });
  const model = randomised(c, 3);
  const want = logitsOf(model);

  for (const layout of ['ours', 'hf', 'mamba_ssm'] as const) {
    it(`${layout}: the same config and logits bit for bit`, () => {
      const dir = tmp();
      writeFolder(dir, c, modelTensors(model), { layout });
      const p = readFolderConfig(dir);
      expect(p.layout).toBe(layout);
      expect(p.config).toEqual({ ...c, dt_rank: layout === 'ours' ? 'auto' : p.config.dt_rank });
      expect(logitsOf(loadModel(dir) as MambaLM)).toEqual(want);
    });
  }

  it('a classifier written as hf or mamba_ssm reads back as the same classifier (the mamba_seq block)', () => {
    const cc = makeConfig('tiny', { task: 'classify', num_classes: 4, pooling: 'last', domain: 'audio' });
    const m = MambaClassifier.create(cc, { seed: 2 });
    for (const layout of ['hf', 'mamba_ssm'] as const) {
      const dir = tmp();
      writeFolder(dir, cc, modelTensors(m), { layout });
      const back = loadModel(dir) as MambaClassifier;
      expect({ ...back.config, dt_rank: 'auto' }).toEqual(cc);
      const inputs = Int32Array.from({ length: 16 }, (_, i) => (i * 37) % 256);
      const batch = { B: 2, L: 8, inputs, labels: Int32Array.from([1, 3]) };
      expect(back.forward(batch).logits).toEqual(m.forward(batch).logits);
    }
  });

  it('BF16 and F16 folders load close to the f32 model', () => {
    for (const [dtype, tol] of [
      ['BF16', 2e-2],
      ['F16', 2e-3],
    ] as const) {
      const dir = tmp();
      writeFolder(dir, c, modelTensors(model, dtype), { layout: 'hf' });
      expect(relErr(logitsOf(loadModel(dir) as MambaLM), want)).toBeLessThan(tol);
    }
  });

  it('sharded folders (model.safetensors.index.json) load; a missing shard or misplaced tensor is named', () => {
    const dir = tmp();
    writeFolder(dir, c, modelTensors(model), { layout: 'hf' });
    const all = modelTensors(model);
    const names = [...all.keys()];
    const shards = [names.slice(0, 7), names.slice(7)];
    const weight_map: Record<string, string> = {};
    shards.forEach((ns, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(dir, file), new Map(ns.map((n) => [n, all.get(n)!])));
      for (const n of ns) weight_map[n] = file;
    });
    rmSync(join(dir, 'model.safetensors'));
    writeJSON(join(dir, 'model.safetensors.index.json'), { metadata: { total_size: 0 }, weight_map });
    expect(logitsOf(loadModel(dir) as MambaLM)).toEqual(want);
    const index = join(dir, 'model.safetensors.index.json');
    writeJSON(index, { weight_map: { ...weight_map, [names[0]!]: 'model-00002-of-00002.safetensors' } });
    expect(() => loadModel(dir)).toThrow(
      /00001-of-00002\.safetensors: holds backbone\.embeddings\.weight, which .*index\.json places in .*00002-of-00002/,
    );
    writeJSON(index, { weight_map: { ...weight_map, extra: 'model-00003-of-00003.safetensors' } });
    expect(() => loadModel(dir)).toThrow(/shard model-00003-of-00003\.safetensors is missing/);
  });

  it('a hand-made mamba_ssm folder: backbone.embedding, the tied head stored, vocab padded from 13', () => {
    const cm = makeConfig({ d_model: 32, n_layer: 2, vocab_size: 13, pad_vocab_size_multiple: 8 });
    const m = randomised(cm, 4);
    const dir = tmp();
    const t = new Map<string, SafeTensor>();
    for (const [k, v] of modelTensors(m)) t.set(k.replace('backbone.embeddings.', 'backbone.embedding.'), v);
    t.set('lm_head.weight', modelTensors(m).get('backbone.embeddings.weight')!);
    writeSafetensors(join(dir, 'model.safetensors'), t);
    writeJSON(join(dir, 'config.json'), {
      d_model: 32,
      n_layer: 2,
      vocab_size: 13,
      ssm_cfg: {},
      rms_norm: true,
      residual_in_fp32: true,
      fused_add_norm: true,
      pad_vocab_size_multiple: 8,
      tie_embeddings: true,
    });
    const p = readFolderConfig(dir);
    expect(p.layout).toBe('mamba_ssm');
    expect(p.config).toEqual(cm);
    expect(logitsOf(loadModel(dir) as MambaLM)).toEqual(logitsOf(m));
  });

  it('a hand-made HF folder without conv bias reads as zero conv bias; use_bias true is refused', () => {
    const m = randomised(makeConfig({ d_model: 32, n_layer: 1 }), 5);
    for (const p of m.parameters()) if (p.name.endsWith('conv1d.bias')) (p.value.data as Float32Array).fill(0);
    m.invalidate();
    const dir = tmp();
    const t = modelTensors(m);
    for (const k of [...t.keys()]) if (k.endsWith('conv1d.bias')) t.delete(k);
    writeSafetensors(join(dir, 'model.safetensors'), t);
    const hf = {
      model_type: 'mamba',
      hidden_size: 32,
      num_hidden_layers: 1,
      vocab_size: 16,
      state_size: 16,
      use_conv_bias: false,
      use_bias: false,
      transformers_version: '5.17.0',
    };
    writeJSON(join(dir, 'config.json'), hf);
    expect(readFolderConfig(dir).source).toBe('transformers 5.17.0 MambaForCausalLM');
    expect(logitsOf(loadModel(dir) as MambaLM)).toEqual(logitsOf(m));
    writeJSON(join(dir, 'config.json'), { ...hf, use_bias: true });
    expect(() => loadModel(dir)).toThrow(/use_bias is true .* allowed: false/);
  });

  it('pytorch_model.bin is refused with the three lines that convert it', () => {
    const dir = tmp();
    writeJSON(join(dir, 'config.json'), { model_type: 'mamba', hidden_size: 32, num_hidden_layers: 1 });
    writeFileSync(join(dir, 'pytorch_model.bin'), 'PK\u0003\u0004 not really');
    expect(() => loadModel(dir)).toThrow(
      /pytorch_model\.bin: PyTorch pickles are not read .*torch\.load\("pytorch_model\.bin", map_location="cpu"/,
    );
    expect(() => loadModel(dir)).toThrow(/save_file\(\{k: v\.contiguous\(\)\.clone\(\) for k, v in sd/);
  });
});

describe('vocabularies and fine-tuning from foreign folders', () => {
  it('a checkpoint whose vocabulary is not ours loads as is; data commands are refused with the reason', () => {
    const dir = tmp();
    const c = makeConfig({ d_model: 16, n_layer: 1, vocab_size: 8, pad_vocab_size_multiple: 8 });
    saveModel(dir, MambaLM.create(c));
    const m = loadModel(dir, { domain: 'dna' });
    expect(m.config.vocab_size).toBe(8);
    expect(() => checkVocabularyFits(m.config, 'dna', dir)).toThrow(/has 8 tokens, DNA data uses ids 0\.\.15/);
    const big = makeConfig('tiny', { vocab_size: 50280 });
    expect(() => checkVocabularyFits(big, 'dna', dir)).not.toThrow();
    expect(() => checkVocabularyFits(big, 'dna', dir, true)).toThrow(
      /50280 tokens, not the 16 of DNA: ids it samples past 15/,
    );
  });

  it('copyBackbone takes every block of a folder of another vocabulary and leaves the embedding fresh', () => {
    const dir = tmp();
    const big = randomised(makeConfig({ d_model: 32, n_layer: 2, vocab_size: 64 }), 6);
    writeFolder(dir, big.config, modelTensors(big), { layout: 'hf' });
    const target = MambaClassifier.create(makeConfig({ d_model: 32, n_layer: 2, task: 'classify', num_classes: 2 }));
    const { copied, skipped } = copyBackbone(target, dir);
    expect(copied).toBe(target.parameters().filter((p) => p.name.startsWith('backbone.')).length - 1);
    expect(skipped[0]).toMatch(/embeddings\.weight \(shape \[64, 32\], the new model's vocabulary needs \[16, 32\]\)/);
    const a = target.parameters().find((p) => p.name === 'backbone.layers.1.mixer.x_proj.weight')!;
    const b = big.parameters().find((p) => p.name === 'backbone.layers.1.mixer.x_proj.weight')!;
    expect(Array.from(a.value.data as Float32Array)).toEqual(Array.from(b.value.data as Float32Array));
  });
});

describe('F16 codec', () => {
  it('known values, and every finite half round-trips bit for bit', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(-2)).toBe(0xc000);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(0.1)).toBe(0x2e66);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // a tie rounds to even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(f16BitsToF32(0x3555)).toBeCloseTo(0.333251953125, 12);
    const bad: number[] = [];
    let finite = 0;
    for (let h = 0; h < 0x10000; h++) {
      const v = f16BitsToF32(h);
      if (!Number.isFinite(v)) continue;
      finite++;
      if (f32ToF16Bits(v) !== h) bad.push(h);
    }
    expect(finite).toBe(0x10000 - 2 * 1024); // all but the infinities and NaNs
    expect(bad).toEqual([]);
  });
});
