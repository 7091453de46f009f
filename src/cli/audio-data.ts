// The data commands of mamba-audio: tokenize, detokenize, dataset build and list. Errors from the data layer
// become one-line user errors (exit 1); outputs go through src/cli/output.ts (atomic for files, `-` is
// stdout), and an existing output file is refused unless --force.
import { Command } from 'commander';
import { AUDIO_ENCODINGS, type AudioEncoding } from '../data/audio/mulaw.js';
import { DEFAULT_AUDIO_RATE, decodeTokenFile, encodeTokenFile, tokenizeWav } from '../data/audio/tokens.js';
import { encodeWav } from '../data/audio/wav.js';
import { decodeTokens } from '../data/audio/mulaw.js';
import { buildAtomically, buildDigits, buildLongSpeech } from '../data/audio/datasets.js';
import { choiceOption, parseIntArg, withExamples, type Registrar } from './common.js';
import { UsageError, UserError, asUserErrors } from './errors.js';
import { inputName, localInput, readInput } from './input.js';
import { STDIO, checkOutput, checkOutputFolder, outputName, writeOutput } from './output.js';
import { createProgress } from './progress.js';

/** The recipes `dataset build` knows, for `dataset list`. */
const AUDIO_RECIPES: Record<string, string> = {
  digits: 'spoken digits zero..nine in many espeak-ng voices, split train/valid/test by voice',
  'long-speech': 'minutes of read public-domain text per espeak-ng voice, for next-token training',
};

const secs = (n: number, rate: number) => `${(n / rate).toFixed(2)} s`;
const rateArg = parseIntArg(1000, 384000);

export const registerAudioData: Registrar = (program: Command, ctx) => {
  const name = ctx.name;
  withExamples(
    program
      .command('tokenize')
      .description('turn a WAV (or FLAC, with sox) into tokens, one byte per sample after downmix to mono and ' +
        'resampling, behind a 20-byte header with the rate and encoding (--raw: no header)')
      .argument('<in>', 'WAV file: PCM 8/16/24/32-bit or float 32/64-bit, any channels and rate; - reads stdin')
      .option('-o, --out <file>', 'output token file; - or no -o: stdout', STDIO)
      .option('--rate <hz>', 'model sample rate', rateArg, DEFAULT_AUDIO_RATE)
      .addOption(choiceOption('--encoding <kind>', 'mu-law (mu = 255) or linear 8-bit', AUDIO_ENCODINGS, 'mulaw'))
      .option('--raw', 'write the bare token bytes, no header (readers then need --raw --rate)')
      .option('-f, --force', 'overwrite an existing output file')
      .action((input: string, o: { out: string; rate: number; encoding: AudioEncoding; raw?: boolean; force?: boolean }) =>
        asUserErrors(async () => {
          checkOutput(o.out, { force: o.force, binary: true });
          const r = tokenizeWav(await localInput(input, { name: 'stdin.wav' }), { rate: o.rate, encoding: o.encoding, memoryCache: false });
          await writeOutput(o.out, o.raw ? r.tokens : encodeTokenFile(r.tokens, r.rate, r.encoding));
          const i = r.info;
          process.stderr.write(
            `${inputName(input)}: ${i.channels} ch, ${i.sampleRate} Hz, ${i.format === 'float' ? 'float' : 'PCM'} ${i.bytesPerSample * 8}-bit, ` +
              `${secs(i.frames, i.sampleRate)} -> ${outputName(o.out)}: ${r.tokens.length.toLocaleString('en-US')} ${o.encoding} tokens ` +
              `at ${o.rate} Hz${o.raw ? ' (raw, no header)' : ''}\n`,
          );
        }),
      ),
    [
      `${name} tokenize speech.wav -o speech.tokens`,
      `${name} tokenize music-44k-stereo.wav -o music.tokens --rate 16000 --encoding linear`,
      `sox in.flac -t wav - | ${name} tokenize - > in.tokens`,
    ],
  );

  withExamples(
    program
      .command('detokenize')
      .description('turn tokens back into a 16-bit PCM mono WAV at the rate and encoding of their header')
      .argument('<in>', 'token file, as written by tokenize; - reads stdin')
      .option('-o, --out <file>', 'output WAV file; - or no -o: stdout', STDIO)
      .option('--raw', 'the input has no header: bare token bytes at --rate, --encoding')
      .option('--rate <hz>', 'with --raw: the sample rate of the tokens', rateArg)
      .addOption(choiceOption('--encoding <kind>', 'with --raw: how the tokens were made (default mulaw)', AUDIO_ENCODINGS))
      .option('-f, --force', 'overwrite an existing output file')
      .action((input: string, o: { out: string; raw?: boolean; rate?: number; encoding?: AudioEncoding; force?: boolean }) =>
        asUserErrors(async () => {
          if (!o.raw && (o.rate !== undefined || o.encoding !== undefined)) {
            throw new UsageError('--rate and --encoding are for --raw token files; a header already names them');
          }
          if (o.raw && o.rate === undefined) throw new UsageError('--raw needs --rate HZ: a headerless token file does not say its rate');
          checkOutput(o.out, { force: o.force, binary: true });
          const bytes = await readInput(input);
          const raw = o.raw ? { rate: o.rate!, encoding: o.encoding ?? 'mulaw' } : undefined;
          const t = decodeTokenFile(bytes, inputName(input), raw);
          if (t.tokens.length === 0) throw new UserError(`${inputName(input)}: no tokens in it`);
          await writeOutput(o.out, encodeWav(decodeTokens(t.tokens, t.encoding), t.rate, 16));
          process.stderr.write(
            `${inputName(input)}: ${t.tokens.length.toLocaleString('en-US')} ${t.encoding} tokens -> ${outputName(o.out)} ` +
              `(${secs(t.tokens.length, t.rate)} at ${t.rate} Hz, 16-bit)\n`,
          );
        }),
      ),
    [
      `${name} detokenize generated.tokens -o generated.wav`,
      `${name} detokenize old.raw --raw --rate 8000 -o old.wav --force`,
      `${name} tokenize speech.wav | ${name} detokenize - | aplay`,
    ],
  );

  const dataset = new Command('dataset').description('build the audio datasets from their recipes (list, build; needs espeak-ng)');
  withExamples(
    dataset
      .command('build')
      .description('build a dataset: "digits" (spoken digits in many espeak-ng voices, split by voice) or "long-speech" (minutes of read public-domain text per voice)')
      .argument('<recipe>', 'digits | long-speech')
      .requiredOption('--out <dir>', 'output folder (made atomically)')
      .option('--voices <n>', 'number of voices (digits: 40, long-speech: 4)', parseIntArg(2, 2000))
      .option('--renditions <n>', 'digits: utterances per voice and digit, at different speeds and pitches', parseIntArg(1, 100), 3)
      .option('--seed <n>', 'voice choice and speed/pitch seed', parseIntArg(0), 1)
      .option('-f, --force', 'replace an existing output folder')
      .action((recipe: string, o: { out: string; voices?: number; renditions: number; seed: number; force?: boolean }) =>
        asUserErrors(() => {
          checkOutputFolder(o.out);
          if (recipe !== 'digits' && recipe !== 'long-speech') throw new UsageError(`unknown recipe "${recipe}" (expected digits or long-speech)`);
          const progress = createProgress();
          let started = false;
          const onProgress = (done: number, total: number) => {
            if (!started) { progress.start(total, 0, recipe); started = true; }
            progress.update(done, {});
          };
          try {
            if (recipe === 'digits') {
              const m = buildAtomically(o.out, (dir) => buildDigits(dir, { voices: o.voices ?? 40, renditions: o.renditions, seed: o.seed, onProgress }), o.force);
              progress.stop();
              const per = (s: string) => m.items.filter((i) => i.split === s).length;
              process.stderr.write(`${o.out}: ${m.items.length} clips (train ${per('train')}, valid ${per('valid')}, test ${per('test')}), manifest.json\n`);
            } else {
              const files = buildAtomically(o.out, (dir) => buildLongSpeech(dir, { voices: o.voices ?? 4, seed: o.seed, onProgress }), o.force);
              progress.stop();
              process.stderr.write(`${o.out}: ${files.length} files (${files.join(', ')})\n`);
            }
          } finally {
            if (started) progress.stop();
          }
        }),
      ),
    [`${name} dataset build digits --out data/digits --voices 60`, `${name} dataset build long-speech --out data/speech --voices 6`],
  );
  withExamples(
    dataset
      .command('list')
      .description('list the dataset recipes')
      .action(() => {
        for (const [k, v] of Object.entries(AUDIO_RECIPES)) process.stdout.write(`${k}\t${v}\n`);
      }),
    [`${name} dataset list`],
  );
  // createProgram sets exitOverride on top-level commands only; the nested one needs its own
  for (const c of dataset.commands) c.exitOverride().showHelpAfterError(`(run ${name} dataset ${c.name()} --help for usage)`);
  program.addCommand(dataset);
};
