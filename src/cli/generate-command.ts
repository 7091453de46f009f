// `generate`: continue a prompt with a trained next-token model, one token at a time through the
// recurrent state cache. DNA writes FASTA (prompt from a region of a FASTA file), one record per sample
// named generated_1..N; audio writes a WAV per sample (prompt from a WAV file). Both CLIs write the
// continuation alone, or with --with-prompt the prompt followed by the continuation.
import { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { resolveDevice } from '../backend/index.js';
import { generateMany } from '../generate/index.js';
import { checkVocabularyFits, loadModel, readConfig, type MambaLM } from '../model/index.js';
import { parseFloatArg, parseIntArg, choiceOption, withExamples, type CliContext, type Registrar } from './common.js';
import { UsageError, UserError, asUserErrors } from './errors.js';
import { inputName, isStreamInput, localInput, refuseStreamInput } from './input.js';
import { STDIO, checkOutput, outputName, outputPath, writeOutput } from './output.js';
import { createProgress } from './progress.js';
import { readRunInfo } from './run-folder.js';

interface GenerateFlags {
  checkpoint: string;
  prompt?: string;
  data?: string;
  promptSeconds?: number;
  length?: number;
  seconds?: number;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  samples: number;
  out?: string;
  force?: boolean;
  withPrompt?: boolean;
  device: 'auto' | 'cpu' | 'cuda';
}

async function run(ctx: CliContext, f: GenerateFlags): Promise<void> {
  const dir = resolve(f.checkpoint);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`--checkpoint ${dir}: no such run folder`);
  const config = await asUserErrors(() => readConfig(dir, { domain: ctx.domain }));
  if (config.domain !== ctx.domain)
    throw new UserError(`${dir} holds a ${config.domain} model; use mamba-${config.domain}, not ${ctx.name}`);
  if (config.task !== 'lm') throw new UserError(`${dir} holds a classifier; generate needs a next-token (lm) model`);
  if (f.seconds !== undefined && f.length !== undefined)
    throw new UsageError('give --length (tokens) or --seconds, not both');
  await asUserErrors(() => checkVocabularyFits(config, ctx.domain, dir, true));
  const out = outputPath(f.out ?? (ctx.domain === 'dna' ? 'generated.fa' : 'generated.wav'));
  // DNA: all samples as records of one FASTA; audio: one WAV per sample (name-1.wav, name-2.wav, ... when several)
  const several = ctx.domain === 'audio' && f.samples > 1;
  if (several && out === STDIO)
    throw new UsageError('--samples with -o -: one WAV per sample needs a file name (e.g. -o take.wav)');
  const outs = several
    ? Array.from({ length: f.samples }, (_, k) => out.replace(/(\.wav)?$/i, (ext) => `-${k + 1}${ext || '.wav'}`))
    : [out];
  for (const o of outs) checkOutput(o, { force: f.force, binary: ctx.domain === 'audio' });
  const device = resolveDevice(f.device);
  let model: MambaLM;
  try {
    const precision = device === 'cuda' ? (readRunInfo(dir)?.precision ?? 'f32') : 'f32';
    model = loadModel(dir, { device, precision, domain: ctx.domain }) as MambaLM;
  } catch (e) {
    throw new UserError((e as Error).message);
  }

  let prompt: Uint8Array;
  let promptLabel: string;
  const rate = readRunInfo(dir)?.rate ?? 16000;
  if (ctx.domain === 'dna') {
    const dna = await import('../data/dna/index.js');
    if (f.prompt) {
      const { DEFAULT_DNA_DATA } = dna;
      if (f.data) refuseStreamInput(f.data, '--data needs an indexed FASTA to read the --prompt region from');
      const file = resolve(f.data ?? DEFAULT_DNA_DATA);
      if (!existsSync(file)) throw new UserError(`${file}: no such file`);
      const fasta = await asUserErrors(() => dna.IndexedFasta.open(file, {}));
      try {
        const region = await asUserErrors(() => dna.parseRegion(f.prompt!, fasta));
        prompt = Uint8Array.from(await asUserErrors(() => fasta.tokens(region.name, region.start, region.end, {})));
        promptLabel = region.label;
      } finally {
        fasta.close();
      }
    } else {
      prompt = Uint8Array.of(dna.BOS);
      promptLabel = 'BOS';
    }
  } else {
    const audio = await import('../data/audio/index.js');
    if (f.prompt) {
      if (!isStreamInput(f.prompt) && !existsSync(f.prompt)) throw new UserError(`${f.prompt}: no such file`);
      const wav = await localInput(f.prompt, { name: 'stdin.wav' });
      const t = await asUserErrors(() => audio.tokenizeWav(resolve(wav), { rate }));
      const keep = Math.min(t.tokens.length, Math.round((f.promptSeconds ?? 1) * rate));
      // the last stretch with signal: a recording that ends in digital silence would prompt silence
      const quiet = Math.abs(audio.decodeTokens(Uint8Array.of(audio.silenceToken(t.encoding)), t.encoding)[0]!);
      const end = lastSignalEnd(audio.decodeTokens(t.tokens, t.encoding), quiet);
      if (end === 0) throw new UserError(`${inputName(f.prompt)}: all digital silence; give a prompt with sound in it`);
      const start = Math.max(0, end - keep);
      prompt = t.tokens.subarray(start, end);
      const trimmed =
        end < t.tokens.length ? ` ending at ${(end / rate).toFixed(2)} s, before the trailing silence` : '';
      promptLabel = `${inputName(f.prompt)} (${((end - start) / rate).toFixed(2)} s${trimmed || ', its end'})`;
    } else {
      prompt = Uint8Array.of(audio.silenceToken());
      promptLabel = 'silence';
    }
  }
  const n =
    f.length ?? (f.seconds !== undefined ? Math.round(f.seconds * rate) : ctx.domain === 'dna' ? 1000 : rate * 2);
  if (!(n >= 1)) throw new UserError('nothing to generate: --length must be at least 1');
  const progress = createProgress(process.stderr, 5);
  progress.log(
    `${ctx.name} generate: ${n.toLocaleString('en-US')} tokens${f.samples > 1 ? ` x ${f.samples} samples (one batch)` : ''} after a ${prompt.length.toLocaleString('en-US')}-token prompt (${promptLabel}), temperature ${f.temperature}, top-k ${f.topK || 'off'}, top-p ${f.topP}`,
  );
  const t0 = Date.now();
  progress.start(n, 0, 'generate');
  let samples: Int32Array[];
  try {
    samples = generateMany(
      model,
      Array.from({ length: f.samples }, () => prompt),
      {
        maxNewTokens: n,
        temperature: f.temperature,
        topK: f.topK,
        topP: f.topP,
        seed: f.seed,
        onStep: (i) => {
          if (i % 256 === 0 || i === n)
            progress.update(i, { 'tok/s': Math.round((i * f.samples) / Math.max(1e-3, (Date.now() - t0) / 1000)) });
        },
      },
    );
  } catch (e) {
    throw new UserError((e as Error).message);
  } finally {
    progress.stop();
  }
  const secs = (Date.now() - t0) / 1000;
  const gens = samples.map((t) => Uint8Array.from(t));
  const total = gens.reduce((a, g) => a + g.length, 0);
  // only a given --prompt is written: the default one (BOS, or one silent sample) is no data
  const keepPrompt = !!(f.withPrompt && f.prompt);
  const withPrompt = (gen: Uint8Array) => {
    if (!keepPrompt) return gen;
    const all = new Uint8Array(prompt.length + gen.length);
    all.set(prompt);
    all.set(gen, prompt.length);
    return all;
  };
  if (ctx.domain === 'dna') {
    const dna = await import('../data/dna/index.js');
    // unique names, so the file indexes (samtools and ours keep one record per name)
    const records = gens.map((gen, k) => {
      const text = new TextEncoder().encode(dna.decodeTokens(withPrompt(gen)));
      const label =
        `generated_${k + 1} length=${gen.length}${keepPrompt ? ` prompt_length=${prompt.length}` : ''}` +
        ` prompt=${promptLabel} temperature=${f.temperature} seed=${f.seed + k}`;
      return dna.formatFastaRecord(label, text);
    });
    await writeOutput(out, records.join(''));
  } else {
    const audio = await import('../data/audio/index.js');
    for (let k = 0; k < gens.length; k++) {
      await writeOutput(outs[k]!, audio.encodeWav(audio.decodeTokens(withPrompt(gens[k]!)), rate, 16));
    }
  }
  // stderr: stdout may be the output itself (-o -)
  process.stderr.write(
    `wrote ${outs.length > 1 ? `${outs[0]} .. ${outs[outs.length - 1]}` : outputName(out)}: ${total.toLocaleString('en-US')} new tokens${gens.length > 1 ? ` (${gens.length} samples)` : ''} in ${secs.toFixed(1)} s (${Math.round(total / secs).toLocaleString('en-US')} tokens/s)\n`,
  );
}

/**
 * The index after the last sample with signal (0 when all of it is silence). Digital silence is a sample
 * no louder than `quiet`, the level of the token that zero encodes to (mu-law's smallest step).
 */
export function lastSignalEnd(samples: Float32Array, quiet: number): number {
  for (let i = samples.length - 1; i >= 0; i--) if (Math.abs(samples[i]!) > quiet * 1.0001) return i + 1;
  return 0;
}

export const registerGenerate: Registrar = (program, ctx) => {
  const dna = ctx.domain === 'dna';
  const cmd = new Command('generate')
    .description(
      dna
        ? 'continue a DNA prompt (a region of a FASTA file) with a trained lm model; writes FASTA (records generated_1..N)'
        : 'continue a WAV prompt with a trained lm model; writes a 16-bit WAV per sample',
    )
    .requiredOption('--checkpoint <dir>', 'run folder of a next-token (lm) model')
    .option(
      '--prompt <' + (dna ? 'region' : 'wav') + '>',
      dna
        ? 'prompt region in samtools syntax (chr:start-end) of --data'
        : 'prompt WAV file (- reads stdin); its last --prompt-seconds with sound, trailing digital silence skipped',
    )
    .option(
      '-o, --out <file>',
      `output ${dna ? 'FASTA (default generated.fa)' : 'WAV (default generated.wav)'}; - is stdout`,
    )
    .option('--with-prompt', 'write the --prompt followed by the continuation (default: the continuation alone)')
    .option('--length <n>', 'tokens to generate', parseIntArg(1, 2 ** 31))
    .option('--temperature <t>', 'sampling temperature (0: greedy)', parseFloatArg(0, 100), 1)
    .option('--top-k <k>', 'sample among the k most likely tokens (0: all)', parseIntArg(0, 1 << 20), 0)
    .option('--top-p <p>', 'nucleus sampling: the smallest set reaching probability p', parseFloatArg(0, 1), 1)
    .option('--seed <n>', 'random seed (sample k uses seed + k - 1)', parseIntArg(0, 2 ** 32 - 1), 0)
    .option(
      '--samples <n>',
      'continuations of the prompt, generated together in one batch' +
        (dna ? ' (records generated_1..N)' : ' (files NAME-1.wav..NAME-N.wav)'),
      parseIntArg(1, 4096),
      1,
    )
    .option('-f, --force', 'overwrite an existing output file')
    .addOption(choiceOption('--device <device>', 'where to compute', ['auto', 'cpu', 'cuda'], 'auto'));
  if (dna) cmd.option('--data <fasta>', 'FASTA file the prompt region comes from (default: the shipped genome)');
  else
    cmd
      .option('--seconds <s>', 'seconds of audio to generate (instead of --length)', parseFloatArg(0, 1e5))
      .option('--prompt-seconds <s>', 'use the last s seconds of the prompt WAV (default 1)', parseFloatArg(0, 1e5));
  cmd.action((opts: GenerateFlags) => run(ctx, opts));
  program.addCommand(
    withExamples(
      cmd,
      dna
        ? [
            'mamba-dna generate --checkpoint runs/my-run --prompt "gi|208433976|ref|NC_011333.1|:1000-2000" --length 5000 -o continuation.fa',
            'mamba-dna generate --checkpoint runs/my-run --samples 8 --length 2000 -o eight.fa',
          ]
        : [
            'mamba-audio generate --checkpoint runs/speech --prompt clip.wav --seconds 2 -o continuation.wav',
            'mamba-audio generate --checkpoint runs/speech --samples 4 --seconds 1 -o take.wav   # take-1.wav .. take-4.wav',
          ],
    ),
  );
};
