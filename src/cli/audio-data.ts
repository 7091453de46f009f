// The data commands of mamba-audio: tokenize, detokenize, dataset build and list. Errors from the data layer
// become one-line user errors (exit 1); outputs go through src/cli/output.ts (atomic for files, `-` is
// stdout), and an existing output file is refused unless --force.
import { Command } from 'commander';
import { AUDIO_ENCODINGS, type AudioEncoding } from '../data/audio/mulaw.js';
import { DEFAULT_AUDIO_RATE, decodeTokenFile, encodeTokenFile, tokenizeWav } from '../data/audio/tokens.js';
import { encodeWav } from '../data/audio/wav.js';
import { decodeTokens } from '../data/audio/mulaw.js';
import { buildAtomically, buildDigits, buildLongSpeech, buildMusic, type MusicRecipe } from '../data/audio/datasets.js';
import { choiceOption, parseIntArg, withExamples, type Registrar } from './common.js';
import { UsageError, UserError, asUserErrors } from './errors.js';
import { inputName, localInput, readInput } from './input.js';
import { STDIO, checkOutput, checkOutputFolder, outputName, writeOutput } from './output.js';
import { createProgress } from './progress.js';

/** The recipes `dataset build` knows, for `dataset list`. */
const AUDIO_RECIPES: Record<string, string> = {
  digits: 'spoken digits zero..nine in many espeak-ng voices, split train/valid/test by voice',
  'long-speech': 'minutes of read public-domain text per espeak-ng voice, for next-token training',
  music:
    'the Battle for Wesnoth soundtrack (wesnoth-1.16-music) decoded by sox to 16 kHz mono, split train/valid/test by track',
};

const secs = (n: number, rate: number) => `${(n / rate).toFixed(2)} s`;
const rateArg = parseIntArg(1000, 384000);

/** --max-seconds train=660,valid=70,test=200 */
function parseMaxSeconds(v: string): Partial<Record<'train' | 'valid' | 'test', number>> {
  const out: Partial<Record<'train' | 'valid' | 'test', number>> = {};
  for (const part of v.split(',')) {
    const m = /^(train|valid|test)=(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!m || !(Number(m[2]) > 0))
      throw new UsageError(
        `--max-seconds: '${part}' is not split=seconds (split train, valid or test; seconds > 0), e.g. train=660,valid=70`,
      );
    out[m[1] as 'train' | 'valid' | 'test'] = Number(m[2]);
  }
  return out;
}

export const registerAudioData: Registrar = (program: Command, ctx) => {
  const name = ctx.name;
  withExamples(
    program
      .command('tokenize')
      .description(
        'turn a WAV (or FLAC, with sox) into tokens, one byte per sample after downmix to mono and ' +
          'resampling, behind a 20-byte header with the rate and encoding (--raw: no header)',
      )
      .argument('<in>', 'WAV file: PCM 8/16/24/32-bit or float 32/64-bit, any channels and rate; - reads stdin')
      .option('-o, --out <file>', 'output token file; - or no -o: stdout', STDIO)
      .option('--rate <hz>', 'model sample rate', rateArg, DEFAULT_AUDIO_RATE)
      .addOption(choiceOption('--encoding <kind>', 'mu-law (mu = 255) or linear 8-bit', AUDIO_ENCODINGS, 'mulaw'))
      .option('--raw', 'write the bare token bytes, no header (readers then need --raw --rate)')
      .option('-f, --force', 'overwrite an existing output file')
      .action(
        (input: string, o: { out: string; rate: number; encoding: AudioEncoding; raw?: boolean; force?: boolean }) =>
          asUserErrors(async () => {
            checkOutput(o.out, { force: o.force, binary: true });
            const r = tokenizeWav(await localInput(input, { name: 'stdin.wav' }), {
              rate: o.rate,
              encoding: o.encoding,
              memoryCache: false,
            });
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
      .addOption(
        choiceOption('--encoding <kind>', 'with --raw: how the tokens were made (default mulaw)', AUDIO_ENCODINGS),
      )
      .option('-f, --force', 'overwrite an existing output file')
      .action(
        (input: string, o: { out: string; raw?: boolean; rate?: number; encoding?: AudioEncoding; force?: boolean }) =>
          asUserErrors(async () => {
            if (!o.raw && (o.rate !== undefined || o.encoding !== undefined)) {
              throw new UsageError('--rate and --encoding are for --raw token files; a header already names them');
            }
            if (o.raw && o.rate === undefined)
              throw new UsageError('--raw needs --rate HZ: a headerless token file does not say its rate');
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

  const dataset = new Command('dataset').description(
    'build the audio datasets from their recipes (list, build; digits, long-speech: espeak-ng; music: sox)',
  );
  withExamples(
    dataset
      .command('build')
      .description(
        'build a dataset: "digits" (spoken digits in many espeak-ng voices, split by voice), "long-speech" (minutes of read public-domain text per voice) or "music" (the Wesnoth soundtrack at 16 kHz mono, split by track)',
      )
      .argument('<recipe>', 'digits | long-speech | music')
      .requiredOption('--out <dir>', 'output folder (made atomically)')
      .option('--voices <n>', 'number of voices (digits: 40, long-speech: 4)', parseIntArg(2, 2000))
      .option(
        '--renditions <n>',
        'digits: utterances per voice and digit, at different speeds and pitches',
        parseIntArg(1, 100),
        3,
      )
      .addOption(
        choiceOption(
          '--format <kind>',
          'music: 16-bit WAV, or mu-law token files (1 byte per sample; compact, for carrying)',
          ['wav', 'tokens'],
          'wav',
        ),
      )
      .option('--source <dir>', 'music: folder of Ogg tracks (default: where wesnoth-1.16-music installs them)')
      .option(
        '--max-seconds <split=s,...>',
        'music: keep at most this much audio per split, e.g. train=660,valid=70,test=200 (a subset)',
        parseMaxSeconds,
      )
      .option(
        '--excerpt-seconds <s>',
        'music: keep the middle s seconds of every track at least that long (a subset of many tracks)',
        parseIntArg(1, 100000),
      )
      .option('--seed <n>', 'voice choice and speed/pitch seed; music: track shuffle seed', parseIntArg(0), 1)
      .option('-f, --force', 'replace an existing output folder')
      .action(
        (
          recipe: string,
          o: {
            out: string;
            voices?: number;
            renditions: number;
            seed: number;
            force?: boolean;
            format: 'wav' | 'tokens';
            source?: string;
            maxSeconds?: MusicRecipe['maxSeconds'];
            excerptSeconds?: number;
          },
        ) =>
          asUserErrors(() => {
            checkOutputFolder(o.out);
            if (recipe !== 'digits' && recipe !== 'long-speech' && recipe !== 'music')
              throw new UsageError(`unknown recipe "${recipe}" (expected digits, long-speech or music)`);
            const progress = createProgress();
            let started = false;
            const onProgress = (done: number, total: number) => {
              if (!started) {
                progress.start(total, 0, recipe);
                started = true;
              }
              progress.update(done, {});
            };
            try {
              if (recipe === 'digits') {
                const m = buildAtomically(
                  o.out,
                  (dir) =>
                    buildDigits(dir, { voices: o.voices ?? 40, renditions: o.renditions, seed: o.seed, onProgress }),
                  o.force,
                );
                progress.stop();
                const per = (s: string) => m.items.filter((i) => i.split === s).length;
                process.stderr.write(
                  `${o.out}: ${m.items.length} clips (train ${per('train')}, valid ${per('valid')}, test ${per('test')}), manifest.json\n`,
                );
              } else if (recipe === 'music') {
                const m = buildAtomically(
                  o.out,
                  (dir) =>
                    buildMusic(dir, {
                      format: o.format,
                      seed: o.seed,
                      onProgress,
                      ...(o.source ? { source: o.source } : {}),
                      ...(o.maxSeconds ? { maxSeconds: o.maxSeconds } : {}),
                      ...(o.excerptSeconds ? { excerptSeconds: o.excerptSeconds } : {}),
                    }),
                  o.force,
                );
                progress.stop();
                const per = (s: 'train' | 'valid' | 'test') =>
                  `${s} ${m.tracks.filter((t) => t.split === s).length} tracks, ${m.hours[s].toFixed(3)} h`;
                process.stderr.write(
                  `${o.out}: ${per('train')}; ${per('valid')}; ${per('test')} (16 kHz mono ${o.format === 'wav' ? '16-bit WAV' : 'mu-law tokens'}), music.json\n`,
                );
              } else {
                const files = buildAtomically(
                  o.out,
                  (dir) => buildLongSpeech(dir, { voices: o.voices ?? 4, seed: o.seed, onProgress }),
                  o.force,
                );
                progress.stop();
                process.stderr.write(`${o.out}: ${files.length} files (${files.join(', ')})\n`);
              }
            } finally {
              if (started) progress.stop();
            }
          }),
      ),
    [
      `${name} dataset build digits --out data/digits --voices 60`,
      `${name} dataset build long-speech --out data/speech --voices 6`,
      `${name} dataset build music --out data/music`,
      `${name} dataset build music --out data/music-subset --format tokens --excerpt-seconds 80 --max-seconds train=480,valid=80,test=240`,
    ],
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
  for (const c of dataset.commands)
    c.exitOverride().showHelpAfterError(`(run ${name} dataset ${c.name()} --help for usage)`);
  program.addCommand(dataset);
};
