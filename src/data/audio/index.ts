// Audio data: WAV decoding, resampling, mu-law tokens, windows for next-token modelling, labelled sets.
export { AudioDataError } from './errors.js';
export {
  readWavInfo,
  readWavBlocks,
  readWavMono,
  decodeFrames,
  encodeWav,
  writeWav,
  writeFileAtomic,
  type WavInfo,
  type SampleFormat,
} from './wav.js';
export { Resampler, resample, RESAMPLER_QUALITY } from './resample.js';
export {
  encodeSamples,
  decodeTokens,
  tokenTable,
  silenceToken,
  muLawCompress,
  muLawExpand,
  AUDIO_VOCAB_SIZE,
  AUDIO_ENCODINGS,
  MU,
  type AudioEncoding,
} from './mulaw.js';
export {
  tokenizeWav,
  tokenizeWavToFile,
  readTokenFile,
  writeTokensAsWav,
  clearTokenCache,
  DEFAULT_AUDIO_RATE,
  type TokenizeOptions,
  type TokenizedAudio,
} from './tokens.js';
export {
  AudioWindowSource,
  openAudioWindows,
  resolveAudioInputs,
  type AudioWindowOptions,
  type Holdout,
} from './windows.js';
export {
  AudioLabelledSource,
  openAudioSet,
  loadAudioSetIndex,
  fitClip,
  splitForSpeaker,
  SPLITS,
  type AudioManifest,
  type AudioManifestItem,
  type AudioSetOptions,
  type AudioClip,
} from './labelled.js';
export {
  DEFAULT_AUDIO_DIGITS,
  DEFAULT_AUDIO_SPEECH,
  AUDIO_TEXTS_DIR,
  DIGIT_WORDS,
  buildDigits,
  buildLongSpeech,
  buildAtomically,
  buildMusic,
  soxDecode,
  WESNOTH_MUSIC_DIRS,
  type MusicRecipe,
  type MusicManifest,
  pickVoices,
  espeakVoices,
  speak,
  trimSilence,
  type DigitsRecipe,
  type LongSpeechRecipe,
  type EspeakVoice,
} from './datasets.js';
export { listAudioFiles } from './files.js';
