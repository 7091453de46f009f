// Model presets and the defaults `train` uses without flags, in one table each, so the help text, the
// README and the code cannot disagree: the help text of --preset is made from PRESETS (describePreset).
import type { Domain, Task } from '../data/types.js';

export const PRESETS = {
  /** for tests: a few thousand parameters */
  tiny: { d_model: 32, n_layer: 2 },
  /** a CPU-trainable model */
  small: { d_model: 256, n_layer: 8 },
  /** the reference mamba-130m shape */
  '130m': { d_model: 768, n_layer: 24 },
} as const;

export type PresetName = keyof typeof PRESETS;

/** "tiny: d_model 32, 2 layers" */
export function describePreset(name: PresetName): string {
  const p = PRESETS[name];
  return `${name}: d_model ${p.d_model}, ${p.n_layer} layers`;
}

/** What `train` does with no flags: next-token modelling of the shipped genome; the shipped spoken digits. */
export const DEFAULT_TASK: Record<Domain, Task> = { dna: 'lm', audio: 'classify' };

/** A model shape: a preset's name or the two numbers. */
export type ModelShape = PresetName | { d_model: number; n_layer: number };

export interface TrainDefaults {
  model: ModelShape;
  seqLen: number;
  batch: number;
  steps: number;
  lr: number;
}

/**
 * Defaults that train a useful model in minutes on a laptop CPU (the README has the figures): a model
 * between tiny and small, as no preset fits that budget.
 */
const CPU_DEFAULTS: Record<Domain, Record<Task, TrainDefaults>> = {
  dna: {
    lm: { model: { d_model: 64, n_layer: 4 }, seqLen: 1024, batch: 8, steps: 600, lr: 4e-3 },
    classify: { model: { d_model: 64, n_layer: 2 }, seqLen: 1024, batch: 8, steps: 300, lr: 3e-3 },
  },
  audio: {
    lm: { model: { d_model: 64, n_layer: 4 }, seqLen: 2048, batch: 4, steps: 400, lr: 3e-3 },
    classify: { model: { d_model: 64, n_layer: 2 }, seqLen: 16000, batch: 8, steps: 120, lr: 3e-3 },
  },
};

/** On a GPU: the small preset, measured on an H100 to reach 1.76 bits/base on G27 in 11 s. */
const GPU_DEFAULTS: Record<Domain, Record<Task, TrainDefaults>> = {
  dna: {
    lm: { model: 'small', seqLen: 1024, batch: 16, steps: 400, lr: 2e-3 },
    classify: { model: 'small', seqLen: 4096, batch: 16, steps: 400, lr: 1e-3 },
  },
  audio: {
    lm: { model: 'small', seqLen: 16384, batch: 8, steps: 800, lr: 2e-3 },
    classify: { model: 'small', seqLen: 16000, batch: 32, steps: 800, lr: 1e-3 },
  },
};

export function trainDefaults(domain: Domain, task: Task, device: 'cpu' | 'cuda'): TrainDefaults {
  return (device === 'cuda' ? GPU_DEFAULTS : CPU_DEFAULTS)[domain][task];
}

/** d_model and n_layer of a shape. */
export function shapeOf(m: ModelShape): { d_model: number; n_layer: number } {
  return typeof m === 'string' ? { ...PRESETS[m] } : m;
}

/** "d_model 64, 4 layers" or "small (d_model 256, 8 layers)" */
export function describeShape(m: ModelShape): string {
  if (typeof m === 'string') return `${m} (${describePreset(m).slice(m.length + 2)})`;
  return `d_model ${m.d_model}, ${m.n_layer} layers`;
}

/** The --preset help: every preset as it really is, and what runs without the flag. */
export function presetHelp(domain: Domain): string {
  const names = Object.keys(PRESETS) as PresetName[];
  const cpu = (t: Task) => describeShape(CPU_DEFAULTS[domain][t].model);
  const gpu = describeShape(GPU_DEFAULTS[domain][DEFAULT_TASK[domain]].model);
  return (
    `model size: ${names.map(describePreset).join('; ')}. Without it: on the CPU ${cpu('lm')} (lm), ` +
    `${cpu('classify')} (classify); on a GPU ${gpu}`
  );
}
