#!/usr/bin/env node
// Our logits of a model folder on a fixed input, for scripts/hf-roundtrip.py to compare with transformers':
//   node scripts/dump-logits.js RUN_DIR [--out FILE] [--length L]
// Writes FILE (default RUN_DIR/our-logits.safetensors): input_ids I32 [2, L] (DNA: bases, ids 4..8; audio:
// levels 0..255), logits F32 [2, L, V] (V = the embedding rows, HF's vocab_size), computed on the CPU in f32;
// its metadata holds a text and the ids our tokenizer gives it, to check the folder's tokenizer.json against.
import { join } from 'node:path';
import { encodeBases } from '../dist/data/dna/tokenizer.js';
import { derived, loadModel, writeSafetensors } from '../dist/model/index.js';

const args = process.argv.slice(2);
if (!args[0] || args[0] === '--help') {
  console.log('usage: node scripts/dump-logits.js RUN_DIR [--out FILE] [--length L]');
  process.exit(args[0] ? 0 : 2);
}
const dir = args[0];
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const out = opt('--out', join(dir, 'our-logits.safetensors'));
const L = Number(opt('--length', '777'));
const B = 2;

const model = loadModel(dir, { device: 'cpu', dtype: 'f32' });
if (model.config.task !== 'lm') {
  throw new Error(`${dir}: an lm run folder is needed (MambaForCausalLM), this one is ${model.config.task}`);
}
const dna = model.config.domain === 'dna';
// a fixed pseudo-random input (DNA: A C G T N = 4..8; audio: any level), the same on every machine
let s = 12345;
const ids = Int32Array.from({ length: B * L }, () => {
  s = (Math.imul(s, 1103515245) + 12345) >>> 0;
  return dna ? 4 + ((s >>> 16) % 5) : (s >>> 16) % 256;
});
const logits = model.logits(ids, B, L);
const V = derived(model.config).paddedVocab;
const text = dna ? 'ACGTNacgtnRYKM GATTACA' : '128 131 127 0 255  64';
const textIds = dna
  ? Array.from(encodeBases(new TextEncoder().encode(text.replace(/\s/g, ''))))
  : text.split(/\s+/).map(Number);
writeSafetensors(
  out,
  new Map([
    ['input_ids', { dtype: 'I32', shape: [B, L], data: ids }],
    ['logits', { dtype: 'F32', shape: [B, L, V], data: Float32Array.from(logits) }],
  ]),
  { format: 'pt', tokenizer_text: text, tokenizer_ids: JSON.stringify(textIds) },
);
console.log(`${out}: logits [${B}, ${L}, ${V}] of ${dir}`);
