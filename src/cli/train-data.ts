// Opening the data of a training run: the training part and the part evaluated during training, each
// checked against the window length before a run folder is made or a step is taken.
import type { LabelledSource, Task, WindowSource } from '../data/types.js';
import { openLabelledData, type DomainData } from './domain-data.js';
import { UserError } from './errors.js';

export interface TrainDataSet {
  train: WindowSource | LabelledSource;
  valid: WindowSource | LabelledSource;
  classes: readonly string[] | undefined;
  /** which part is evaluated during training, e.g. "held-out part" or "valid split" */
  evalName: string;
  /** false when the evaluated part is a test split: no model is chosen on test data (no best/) */
  selectOnEval: boolean;
}

function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A power of two that fits a part of `longest` tokens (windows need seq-len + 1 tokens). */
function fittingSeqLen(longest: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(2, longest - 1)));
}

/** Throws when no window of seqLen + 1 tokens fits in `src`, naming the part and both lengths. */
export function checkWindowFits(src: WindowSource, seqLen: number, what: string, hint: string): void {
  const longest = src.maxWindowLength();
  if (longest >= seqLen + 1) return;
  throw new UserError(
    `--seq-len ${seqLen} needs windows of ${fmtInt(seqLen + 1)} tokens, but the longest record of the ${what} holds ` +
      `${fmtInt(longest)} (${src.describe()}); use --seq-len ${fittingSeqLen(longest)} or less${hint}`,
  );
}

export async function openTrainData(
  dd: DomainData,
  task: Task,
  path: string,
  seqLen: number,
  evalPath?: string,
): Promise<TrainDataSet> {
  if (task === 'lm') {
    const d = await dd.openLm(path);
    checkWindowFits(d.train, seqLen, `training part of ${path}`, '');
    let evalName = 'held-out part';
    if (evalPath) {
      d.valid = await dd.openEval(evalPath);
      evalName = `--eval-data ${evalPath}`;
      checkWindowFits(d.valid, seqLen, `--eval-data ${evalPath}`, ', or a longer --eval-data');
    } else {
      checkWindowFits(d.valid, seqLen, `held-out part of ${path}`, ', or --eval-data a longer held-out file');
    }
    return { train: d.train, valid: d.valid, classes: undefined, evalName, selectOnEval: true };
  }
  const d = await openLabelledData(dd, path);
  if (d.train.classes.length < 2) {
    const c = d.train.classes;
    throw new UserError(`${path}: a classifier needs at least 2 classes, the set has ${c.length} (${c.join(', ')})`);
  }
  return {
    train: d.train,
    valid: d.valid,
    classes: d.train.classes,
    evalName: `${d.validSplit} split`,
    selectOnEval: d.validSplit !== 'test',
  };
}
