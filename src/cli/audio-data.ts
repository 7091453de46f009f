// The data commands of mamba-audio: tokenize, detokenize, dataset build. Errors from the data layer become
// one-line user errors (exit 1); outputs are written through a temp file and a rename, and an existing
// output is refused unless --force.
import { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { AUDIO_ENCODINGS, type AudioEncoding } from '../data/audio/mulaw.js';
import { DEFAULT_AUDIO_RATE, readTokenFile, tokenizeWavToFile, writeTokensAsWav } from '../data/audio/tokens.js';
import { buildAtomically, buildDigits, buildLongSpeech, buildMusic, type MusicRecipe } from '../data/audio/datasets.js';
import { choiceOption, parseIntArg, withExamples, type Registrar } from './common.js';
import { UsageError, UserError, asUserErrors } from './errors.js';
import { createProgress } from './progress.js';


function refuseExisting(out: string, force?: boolean): void {
  if (existsSync(out) && !force) throw new UserError(`${out} exists; pass --force to overwrite it`);
  if (existsSync(out) && statSync(out).isDirectory()) throw new UserError(`${out} is a folder`);
}

const secs = (n: number, rate: number) => `${(n / rate).toFixed(2)} s`;

/** --max-seconds train=660,valid=70,test=200 */
function parseMaxSeconds(v: string): Partial<Record<'train' | 'valid' | 'test', number>> {
  const out: Partial<Record<'train' | 'valid' | 'test', number>> = {};
  for (const part of v.split(',')) {
    const m = /^(train|valid|test)=(\d+(?:\.\d+)?)$/.exec(part.trim());
    if (!m || !(Number(m[2]) > 0)) throw new UsageError(`--max-seconds: '${part}' is not split=seconds (split train, valid or test; seconds > 0), e.g. train=660,valid=70`);
    out[m[1] as 'train' | 'valid' | 'test'] = Number(m[2]);
  }
  return out;
}

export const registerAudioData: Registrar = (program: Command, ctx) => {
  const name = ctx.name;
  withExamples(
    program
      .command('tokenize')
      .description('turn a WAV file into raw tokens, one byte per sample, after downmix to mono and resampling')
      .argument('<in>', 'WAV file: PCM 8/16/24/32-bit or float 32/64-bit, any channels and rate')
      .requiredOption('-o, --out <file>', 'output token file (one byte per sample)')
      .option('--rate <hz>', 'model sample rate', parseIntArg(1000, 384000), DEFAULT_AUDIO_RATE)
      .addOption(choiceOption('--encoding <kind>', 'mu-law (mu = 255) or linear 8-bit', AUDIO_ENCODINGS, 'mulaw'))
      .option('-f, --force', 'overwrite an existing output')
      .action((input: string, o: { out: string; rate: number; encoding: AudioEncoding; force?: boolean }) =>
        asUserErrors(() => {
          refuseExisting(o.out, o.force);
          const r = tokenizeWavToFile(input, o.out, { rate: o.rate, encoding: o.encoding });
          const i = r.info;
          process.stderr.write(
            `${input}: ${i.channels} ch, ${i.sampleRate} Hz, ${i.format === 'float' ? 'float' : 'PCM'} ${i.bytesPerSample * 8}-bit, ${secs(i.frames, i.sampleRate)}` +
              ` -> ${o.out}: ${r.tokens.length.toLocaleString('en-US')} ${o.encoding} tokens at ${o.rate} Hz\n`,
          );
        }),
      ),
    [`${name} tokenize speech.wav -o speech.tokens`, `${name} tokenize music-44k-stereo.wav -o music.tokens --rate 16000 --encoding linear`],
  );

  withExamples(
    program
      .command('detokenize')
      .description('turn raw tokens (one byte per sample) back into a 16-bit PCM mono WAV')
      .argument('<in>', 'token file, as written by tokenize or generate')
      .requiredOption('-o, --out <file>', 'output WAV file')
      .option('--rate <hz>', 'sample rate of the tokens', parseIntArg(1000, 384000), DEFAULT_AUDIO_RATE)
      .addOption(choiceOption('--encoding <kind>', 'how the tokens were made', AUDIO_ENCODINGS, 'mulaw'))
      .option('-f, --force', 'overwrite an existing output')
      .action((input: string, o: { out: string; rate: number; encoding: AudioEncoding; force?: boolean }) =>
        asUserErrors(() => {
          refuseExisting(o.out, o.force);
          const tokens = readTokenFile(input);
          if (tokens.length === 0) throw new UserError(`${input}: empty token file`);
          writeTokensAsWav(o.out, tokens, o.rate, o.encoding);
          process.stderr.write(`${input}: ${tokens.length.toLocaleString('en-US')} tokens -> ${o.out} (${secs(tokens.length, o.rate)} at ${o.rate} Hz, 16-bit)\n`);
        }),
      ),
    [`${name} detokenize generated.tokens -o generated.wav`, `${name} detokenize speech.tokens -o check.wav --rate 16000 --force`],
  );

  const dataset = new Command('dataset').description('build audio datasets from recipes (digits, long-speech: espeak-ng; music: sox and wesnoth-1.16-music)');
  withExamples(
    dataset
      .command('build')
      .description('build a dataset: "digits" (spoken digits in many espeak-ng voices, split by voice), "long-speech" (minutes of read public-domain text per voice) or "music" (the Wesnoth soundtrack at 16 kHz mono, split by track)')
      .argument('<recipe>', 'digits | long-speech | music')
      .requiredOption('--out <dir>', 'output folder (made atomically)')
      .option('--voices <n>', 'number of voices (digits: 40, long-speech: 4)', parseIntArg(2, 2000))
      .option('--renditions <n>', 'digits: utterances per voice and digit, at different speeds and pitches', parseIntArg(1, 100), 3)
      .addOption(choiceOption('--format <kind>', 'music: 16-bit WAV, or mu-law token files (1 byte per sample; compact, for carrying)', ['wav', 'tokens'], 'wav'))
      .option('--source <dir>', 'music: folder of Ogg tracks (default: where wesnoth-1.16-music installs them)')
      .option('--max-seconds <split=s,...>', 'music: keep at most this much audio per split, e.g. train=660,valid=70,test=200 (a subset)', parseMaxSeconds)
      .option('--excerpt-seconds <s>', 'music: keep the middle s seconds of every track at least that long (a subset of many tracks)', parseIntArg(1, 100000))
      .option('--seed <n>', 'voice choice and speed/pitch seed; music: track shuffle seed', parseIntArg(0), 1)
      .option('-f, --force', 'replace an existing output folder')
      .action((recipe: string, o: { out: string; voices?: number; renditions: number; seed: number; force?: boolean; format: 'wav' | 'tokens'; source?: string; maxSeconds?: MusicRecipe['maxSeconds']; excerptSeconds?: number }) =>
        asUserErrors(() => {
          if (recipe !== 'digits' && recipe !== 'long-speech' && recipe !== 'music') throw new UsageError(`unknown recipe "${recipe}" (expected digits, long-speech or music)`);
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
            } else if (recipe === 'music') {
              const m = buildAtomically(o.out, (dir) => buildMusic(dir, { format: o.format, seed: o.seed, onProgress, ...(o.source ? { source: o.source } : {}), ...(o.maxSeconds ? { maxSeconds: o.maxSeconds } : {}), ...(o.excerptSeconds ? { excerptSeconds: o.excerptSeconds } : {}) }), o.force);
              progress.stop();
              const per = (s: 'train' | 'valid' | 'test') => `${s} ${m.tracks.filter((t) => t.split === s).length} tracks, ${m.hours[s].toFixed(3)} h`;
              process.stderr.write(`${o.out}: ${per('train')}; ${per('valid')}; ${per('test')} (16 kHz mono ${o.format === 'wav' ? '16-bit WAV' : 'mu-law tokens'}), music.json\n`);
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
    [
      `${name} dataset build digits --out data/digits --voices 60`,
      `${name} dataset build long-speech --out data/speech --voices 6`,
      `${name} dataset build music --out data/music`,
      `${name} dataset build music --out data/music-subset --format tokens --excerpt-seconds 80 --max-seconds train=480,valid=80,test=240`,
    ],
  );
  // createProgram sets exitOverride on top-level commands only; the nested one needs its own
  for (const c of dataset.commands) c.exitOverride().showHelpAfterError(`(run ${name} dataset ${c.name()} --help for usage)`);
  program.addCommand(dataset);
};
