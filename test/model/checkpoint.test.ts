// safetensors writer/reader and model checkpoints: byte layout, round trips, clear errors for other
// shapes and truncated files, atomic writes.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CheckpointError,
  MambaLM,
  decodeSafetensors,
  encodeSafetensors,
  loadModel,
  makeConfig,
  readSafetensors,
  saveModel,
  type SafeTensor,
} from '../../src/model/index.js';
import { Rng } from '../../src/util/rng.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'mamba-ckpt-'));
}

describe('safetensors', () => {
  it('writes the standard layout: u64 LE header length, aligned JSON header, raw LE data', () => {
    const m = new Map<string, SafeTensor>([
      ['a', { dtype: 'F32', shape: [2, 2], data: Float32Array.from([1, -2, 3.5, 4]) }],
      ['b', { dtype: 'I32', shape: [3], data: Int32Array.from([7, -8, 9]) }],
      ['c', { dtype: 'BF16', shape: [1], data: Uint16Array.from([0x3f80]) }],
      ['d', { dtype: 'F64', shape: [1], data: Float64Array.from([Math.PI]) }],
    ]);
    const buf = encodeSafetensors(m, { format: 'pt' });
    const hl = Number(buf.readBigUInt64LE(0));
    expect((8 + hl) % 8).toBe(0);
    const header = JSON.parse(buf.subarray(8, 8 + hl).toString());
    expect(header.a).toEqual({ dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] });
    expect(header.b).toEqual({ dtype: 'I32', shape: [3], data_offsets: [16, 28] });
    expect(header.c.data_offsets).toEqual([28, 30]);
    expect(header.__metadata__).toEqual({ format: 'pt' });
    expect(buf.readFloatLE(8 + hl + 8)).toBe(3.5);
    expect(buf.readInt32LE(8 + hl + 20)).toBe(-8);
    expect(buf.readDoubleLE(8 + hl + 30)).toBe(Math.PI);
    const back = decodeSafetensors(buf).tensors;
    expect(Array.from(back.get('a')!.data)).toEqual([1, -2, 3.5, 4]);
    expect(Array.from(back.get('d')!.data)).toEqual([Math.PI]);
  });

  it('truncated or corrupt files give errors naming the tensor and offsets', () => {
    const m = new Map<string, SafeTensor>([['w', { dtype: 'F32', shape: [4], data: Float32Array.from([1, 2, 3, 4]) }]]);
    const buf = encodeSafetensors(m);
    expect(() => decodeSafetensors(buf.subarray(0, buf.length - 3), 'x.safetensors')).toThrow(
      /tensor w: data \[0, 16\) runs past the end of the data \(13 bytes\): the file is truncated/,
    );
    expect(() => decodeSafetensors(buf.subarray(0, 20))).toThrow(/header length \d+ runs past the end/);
    expect(() => decodeSafetensors(Buffer.alloc(3))).toThrow(CheckpointError);
  });
});

describe('model checkpoints', () => {
  const cfg = makeConfig({ d_model: 16, n_layer: 2, d_state: 4 });

  it('round-trips a model exactly (same logits), with reference key names and shapes', () => {
    const dir = tmp();
    const a = MambaLM.create(cfg, { seed: 5 });
    // move A_log off its init so a stale A cache would show
    for (const p of a.parameters())
      if (p.name.endsWith('A_log'))
        (p.value.data as Float32Array).forEach((v, i, arr) => {
          arr[i] = v + 0.01 * i;
        });
    saveModel(dir, a);
    const { tensors } = readSafetensors(join(dir, 'model.safetensors'));
    expect(tensors.get('backbone.layers.1.mixer.conv1d.weight')!.shape).toEqual([32, 1, 4]);
    expect(tensors.get('backbone.layers.0.mixer.x_proj.weight')!.shape).toEqual([1 + 2 * 4, 32]);
    expect(tensors.has('backbone.norm_f.weight')).toBe(true);
    expect(tensors.has('lm_head.weight')).toBe(false); // tied
    const cj = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(cj.ssm_cfg.d_state).toBe(4);
    const b = loadModel(dir) as MambaLM;
    const r = new Rng(1);
    const batch = {
      B: 2,
      L: 10,
      inputs: Int32Array.from({ length: 20 }, () => r.int(16)),
      targets: Int32Array.from({ length: 20 }, () => r.int(16)),
    };
    expect(b.forward(batch).loss).toBe(a.forward(batch).loss);
    // no temp files left; the tokenizer files describe the DNA vocabulary for transformers
    expect(readdirSync(dir).sort()).toEqual([
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
  });

  it('bf16 checkpoints load close to the f32 model', () => {
    const dir = tmp();
    const a = MambaLM.create(cfg, { seed: 6 });
    saveModel(dir, a, { dtype: 'BF16' });
    const b = loadModel(dir) as MambaLM;
    const batch = {
      B: 1,
      L: 12,
      inputs: Int32Array.from({ length: 12 }, (_, i) => 4 + (i % 4)),
      targets: Int32Array.from({ length: 12 }, (_, i) => 4 + ((i + 1) % 4)),
    };
    expect(Math.abs(b.forward(batch).loss - a.forward(batch).loss)).toBeLessThan(0.02);
  });

  it('a checkpoint of another shape is a clear error naming the tensor', () => {
    const dir = tmp();
    saveModel(dir, MambaLM.create(cfg));
    const other = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    other.d_model = 24;
    writeFileSync(join(dir, 'config.json'), JSON.stringify(other));
    expect(() => loadModel(dir)).toThrow(
      /tensor backbone\.embeddings\.weight has shape \[16, 16\], the model needs \[16, 24\]/,
    );
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...other, d_model: 0 }));
    expect(() => loadModel(dir)).toThrow(/d_model must be a positive integer, got 0/);
    expect(() => loadModel(join(dir, 'nope'))).toThrow(/no such file/);
  });
});
