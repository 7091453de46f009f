// tokenizer.json (the Hugging Face `tokenizers` serialisation) and tokenizer_config.json for our two fixed
// vocabularies, so transformers' AutoTokenizer.from_pretrained(run_folder) turns text into our token ids.
// DNA: a WordLevel model over single characters, ids as in src/data/dna/tokenizer.ts; the normalizer does
//   what our encoder does (lower case folds to upper, other IUPAC codes become N, whitespace is dropped);
//   the specials <pad> <bos> <eos> <mask> are added tokens. A character that is not a base has no id, so
//   the Python tokenizer fails on it, as ours refuses it.
// Audio: a WordLevel model over the decimal strings "0".."255" (one mu-law or linear level each), split on
//   whitespace: tokenizer("128 131 127") gives [128, 131, 127].
import { DNA_VOCAB } from '../data/dna/tokenizer.js';
import type { Domain } from '../data/types.js';

type Json = Record<string, unknown>;

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

const DNA_SPECIALS = ['<pad>', '<bos>', '<eos>', '<mask>'];
const IUPAC_OTHER = 'RYSWKMBDHV';

function addedToken(id: number, content: string): Json {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

function replace(pattern: Json, content: string): Json {
  return { type: 'Replace', pattern, content };
}

/** The vocabulary (symbol -> id) of a domain, exactly our token ids. */
export function tokenizerVocab(domain: Domain): Record<string, number> {
  const vocab: Record<string, number> = {};
  if (domain === 'audio') for (let i = 0; i < 256; i++) vocab[String(i)] = i;
  else
    DNA_VOCAB.forEach((sym, id) => {
      vocab[sym] = id;
    });
  return vocab;
}

/** tokenizer.json contents for a domain. */
export function tokenizerJSON(domain: Domain): Json {
  const common = { version: '1.0', truncation: null, padding: null, post_processor: null };
  if (domain === 'audio') {
    return {
      ...common,
      added_tokens: [],
      normalizer: null,
      pre_tokenizer: { type: 'WhitespaceSplit' },
      decoder: null,
      model: { type: 'WordLevel', vocab: tokenizerVocab('audio'), unk_token: '<unk>' },
    };
  }
  const upper = ['A', 'C', 'G', 'T', 'N'].map((b) => replace({ String: b.toLowerCase() }, b));
  return {
    ...common,
    added_tokens: DNA_SPECIALS.map((s) => addedToken(DNA_VOCAB.indexOf(s), s)),
    normalizer: {
      type: 'Sequence',
      normalizers: [
        replace({ Regex: '\\s+' }, ''),
        ...upper,
        replace({ Regex: `[${IUPAC_OTHER}${IUPAC_OTHER.toLowerCase()}]` }, 'N'),
      ],
    },
    // one piece per character
    pre_tokenizer: { type: 'Split', pattern: { Regex: '.' }, behavior: 'Isolated', invert: false },
    decoder: { type: 'Fuse' },
    model: { type: 'WordLevel', vocab: tokenizerVocab('dna'), unk_token: '<unk>' },
  };
}

/** tokenizer_config.json: which class reads tokenizer.json, and the specials by role. */
export function tokenizerConfigJSON(domain: Domain): Json {
  const specials =
    domain === 'dna' ? { pad_token: '<pad>', bos_token: '<bos>', eos_token: '<eos>', mask_token: '<mask>' } : {};
  return {
    tokenizer_class: 'PreTrainedTokenizerFast',
    ...specials,
    model_max_length: 2 ** 31 - 1,
    clean_up_tokenization_spaces: false,
    add_bos_token: false,
    add_eos_token: false,
  };
}
