// The audio twins of the DNA workflows: `mamba-audio score` (bits per sample over time for each WAV, as
// CSV and an SVG plot against time) and `mamba-audio embed` (one vector per file or per window). The
// windows and pooling are the DNA ones (src/workflows/track.ts, src/workflows/embed.ts) without strands.
import { Command } from 'commander';
import { statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { DEFAULT_AUDIO_RATE, listAudioFiles, tokenizeWav } from '../data/audio/index.js';
import { lineChart, type Series } from '../report/svg.js';
import { AtomicOutput } from '../util/text-output.js';
import type { EmbedItem, Pool } from '../workflows/embed.js';
import { defaultBatchTokens } from '../workflows/likelihood.js';
import { scoreTrack } from '../workflows/track.js';
import { writeFileAtomic } from '../model/checkpoint.js';
import { choiceOption, parseFloatArg, parseIntArg, withExamples, type Registrar } from './common.js';
import { embeddingsFormat, embeddingsTsvPath, writeEmbeddings } from './embed-command.js';
import { UsageError, UserError, asUserErrors } from './errors.js';
import { asLm, checkOutput, loadForInference, precisionOption, trainedSeqLen } from './inference.js';
import { readRunInfo } from './run-folder.js';

/** The sample rate a run was trained at (run.json), the default for scoring and embedding its audio. */
const runRate = (dir: string): number => readRunInfo(dir)?.rate ?? DEFAULT_AUDIO_RATE;

const ctx = { domain: 'audio' as const, name: 'mamba-audio' };

/** WAV files named directly or inside folders, in the order given (folders sorted). */
function wavInputs(inputs: string[]): string[] {
  const out: string[] = [];
  for (const p of inputs) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new UserError(`${p}: no such file or folder`);
    }
    if (st.isDirectory()) {
      const files = listAudioFiles(p).filter((f) => /\.wav$/i.test(f));
      if (!files.length) throw new UserError(`${p}: no .wav files in this folder`);
      out.push(...files);
    } else out.push(p);
  }
  return out;
}

interface AudioScoreFlags {
  checkpoint: string;
  context?: number;
  binSeconds: number;
  rate?: number;
  batchTokens?: number;
  out: string;
  force?: boolean;
  device: 'auto' | 'cpu' | 'cuda';
  precision?: 'f32' | 'bf16';
}

async function audioScore(inputs: string[], f: AudioScoreFlags): Promise<void> {
  const out = resolve(f.out);
  if (!/\.csv$/i.test(out))
    throw new UsageError(`-o ${out}: the output must end in .csv (the plot goes beside it as .svg)`);
  const svgPath = out.replace(/\.csv$/i, '.svg');
  checkOutput(out, f.force);
  checkOutput(svgPath, f.force);
  const loaded = await loadForInference(ctx, resolve(f.checkpoint), f.device, 'lm', f.precision);
  const rate = f.rate ?? runRate(loaded.dir);
  const model = asLm(loaded);
  const N = f.context ?? trainedSeqLen(loaded.dir) ?? 16384;
  const files = wavInputs(inputs);
  const bin = Math.max(1, Math.round(f.binSeconds * rate));
  const csv = new AtomicOutput(out);
  const series: Series[] = [];
  const t0 = Date.now();
  let total = 0;
  try {
    csv.write('file,start_s,end_s,samples,bits_per_sample\n');
    for (const file of files) {
      const { tokens } = await asUserErrors(() => tokenizeWav(file, { rate: rate, memoryCache: false }));
      const seq = { length: tokens.length, read: (s: number, e: number) => tokens.subarray(s, e) };
      const points: [number, number][] = [];
      let n = 0,
        sum = 0,
        binN = 0,
        binSum = 0,
        binStart = 0;
      const closeBin = (end: number) => {
        if (binN) {
          const mean = binSum / binN;
          csv.write(
            `${csvField(file)},${(binStart / rate).toFixed(4)},${(end / rate).toFixed(4)},${binN},${mean.toFixed(4)}\n`,
          );
          points.push([(binStart + end) / 2 / rate, mean]);
        }
        binN = 0;
        binSum = 0;
        binStart = end;
      };
      await asUserErrors(() => {
        for (const chunk of scoreTrack(model, seq, 0, tokens.length, {
          context: N,
          strand: 'forward',
          batchTokens: f.batchTokens ?? defaultBatchTokens(loaded.model),
        })) {
          for (let i = 0; i < chunk.values.length; i++) {
            const pos = chunk.start + i;
            if (pos - binStart >= bin) closeBin(binStart + bin);
            const v = chunk.values[i]!;
            if (Number.isNaN(v)) continue;
            binN++;
            binSum -= v;
            n++;
            sum -= v;
          }
        }
      });
      closeBin(tokens.length);
      total += n;
      series.push({ name: basename(file), points });
      process.stderr.write(`${file}\t${n} samples scored\tmean ${(n ? sum / n : NaN).toFixed(4)} bits per sample\n`);
    }
    csv.close();
  } catch (e) {
    csv.abort();
    throw e;
  }
  writeFileAtomic(
    svgPath,
    lineChart(series, {
      title: `bits per sample over time (context ${N} samples = ${(N / rate).toFixed(2)} s)`,
      xLabel: 'time (s)',
      yLabel: 'bits per sample (-log2 P)',
      yMin: 0,
    }),
  );
  const secs = (Date.now() - t0) / 1000;
  process.stderr.write(
    `${files.length} files, ${total} samples in ${secs.toFixed(1)} s (${Math.round(total / Math.max(secs, 1e-3))} samples/s on ${loaded.device})\n`,
  );
  console.log(`wrote ${out} and ${svgPath}`);
}

function csvField(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

interface AudioEmbedFlags {
  checkpoint: string;
  pool: Pool;
  windowSeconds?: number;
  maxWindow?: number;
  rate?: number;
  batchTokens?: number;
  out: string;
  force?: boolean;
  device: 'auto' | 'cpu' | 'cuda';
  precision?: 'f32' | 'bf16';
}

async function audioEmbed(inputs: string[], f: AudioEmbedFlags): Promise<void> {
  const out = resolve(f.out);
  embeddingsFormat(out);
  checkOutput(out, f.force);
  checkOutput(embeddingsTsvPath(out), f.force);
  const loaded = await loadForInference(ctx, resolve(f.checkpoint), f.device, 'any', f.precision);
  const rate = f.rate ?? runRate(loaded.dir);
  const files = wavInputs(inputs);
  const items: EmbedItem[] = [];
  for (const file of files) {
    const { tokens } = await asUserErrors(() => tokenizeWav(file, { rate: rate, memoryCache: false }));
    const per = f.windowSeconds ? Math.max(1, Math.round(f.windowSeconds * rate)) : tokens.length;
    // one item per file, or per window of --window-seconds (a shorter last one kept)
    for (let s = 0; s < tokens.length; s += per) {
      const t = tokens.subarray(s, Math.min(tokens.length, s + per));
      const name = f.windowSeconds ? `${file}@${(s / rate).toFixed(3)}s` : file;
      items.push({ name, length: t.length, read: (a, b) => t.subarray(a, b) });
    }
  }
  const window = f.maxWindow ?? trainedSeqLen(loaded.dir) ?? 16384;
  const o = {
    pool: f.pool,
    strand: 'forward' as const,
    window,
    batchTokens: f.batchTokens ?? defaultBatchTokens(loaded.model),
  };
  const r = await asUserErrors(() =>
    writeEmbeddings(loaded.model, items, o, out, { checkpoint: loaded.dir, rate: String(rate) }),
  );
  process.stderr.write(
    `${items.length} items from ${files.length} files in ${r.seconds.toFixed(1)} s ` +
      `(${(items.length / Math.max(r.seconds, 1e-3)).toFixed(1)} items/s on ${loaded.device})\n`,
  );
  console.log(`wrote ${out} [${r.rows}, ${loaded.model.config.d_model}] and ${embeddingsTsvPath(out)}`);
}

export const registerAudioWorkflows: Registrar = (program) => {
  const deviceOption = () => choiceOption('--device <device>', 'where to compute', ['auto', 'cpu', 'cuda'], 'auto');
  const score = new Command('score')
    .description(
      'bits per sample (-log2 P) over time for each WAV under a next-token model: a CSV of time bins ' +
        'and an SVG plot against time beside it; a summary line per file on stderr',
    )
    .argument('<inputs...>', 'WAV files or folders of them')
    .requiredOption('--checkpoint <dir>', 'run folder of a next-token (lm) model')
    .option(
      '--context <n>',
      'N: each sample sees up to N samples of left context and at least N/2 (but the first N); ' +
        'default: the training sequence length',
      parseIntArg(2, 2 ** 24),
    )
    .option('--bin-seconds <s>', 'width of the time bins of the CSV and plot', parseFloatArg(1e-5, 1e6), 0.1)
    .option('--rate <hz>', "model sample rate (default: the run's, else 16000)", parseIntArg(1000, 384000))
    .option(
      '--batch-tokens <n>',
      'tokens per forward pass (default on a GPU: as many as half its free memory holds, 2^16 to 2^23; 2^15 on the CPU)',
      parseIntArg(2, 2 ** 28),
    )
    .requiredOption(
      '-o, --out <file.csv>',
      'output CSV (file,start_s,end_s,samples,bits_per_sample); the SVG is file.svg',
    )
    .option('--force', 'overwrite the outputs')
    .addOption(deviceOption())
    .addOption(precisionOption())
    .action((inputs: string[], opts: AudioScoreFlags) => audioScore(inputs, opts));
  program.addCommand(
    withExamples(score, [
      'mamba-audio score --checkpoint runs/speech speech.wav --context 2^14 -o speech-bits.csv',
      'mamba-audio score --checkpoint runs/speech clips/ --bin-seconds 0.5 -o clips.csv',
    ]),
  );

  const embed = new Command('embed')
    .description(
      'embeddings from a trained backbone (final normed hidden states): one vector per WAV file, or per ' +
        'window of --window-seconds; .npy or .safetensors plus a TSV of names and shapes',
    )
    .argument('<inputs...>', 'WAV files or folders of them')
    .requiredOption('--checkpoint <dir>', 'run folder (lm or classifier)')
    .addOption(
      choiceOption(
        '--pool <p>',
        'mean over samples, last sample, or none (a vector per sample)',
        ['mean', 'last', 'none'],
        'mean',
      ),
    )
    .option(
      '--window-seconds <s>',
      'one vector per window of this many seconds instead of per file',
      parseFloatArg(1e-4, 1e6),
    )
    .option(
      '--max-window <n>',
      'longest forward pass in samples; longer items are cut (default: the training length)',
      parseIntArg(1, 2 ** 24),
    )
    .option('--rate <hz>', "model sample rate (default: the run's, else 16000)", parseIntArg(1000, 384000))
    .option(
      '--batch-tokens <n>',
      'tokens per forward pass (default on a GPU: as many as half its free memory holds, 2^16 to 2^23; 2^15 on the CPU)',
      parseIntArg(1, 2 ** 28),
    )
    .requiredOption('-o, --out <file>', 'output .npy (float32) or .safetensors')
    .option('--force', 'overwrite the outputs')
    .addOption(deviceOption())
    .addOption(precisionOption())
    .action((inputs: string[], opts: AudioEmbedFlags) => audioEmbed(inputs, opts));
  program.addCommand(
    withExamples(embed, [
      'mamba-audio embed --checkpoint runs/digits datasets/audio/digits -o digits.npy',
      'mamba-audio embed --checkpoint runs/speech speech.wav --window-seconds 1 -o speech-1s.safetensors',
    ]),
  );
};
