// Progress for long work: a live bar (cli-progress) on a terminal, plain log lines when output is piped.
import cliProgress from 'cli-progress';

export interface ProgressFields {
  [k: string]: string | number;
}

export interface Progress {
  start(total: number, startValue: number, label: string): void;
  update(value: number, fields: ProgressFields): void;
  /** a line that must not be overwritten by the bar */
  log(line: string): void;
  stop(): void;
}

function fmtEta(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 90) return `${Math.round(s)}s`;
  if (s < 5400) return `${Math.round(s / 60)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}

function fmtFields(f: ProgressFields): string {
  return Object.entries(f)
    .map(([k, v]) => `${k} ${v}`)
    .join(' | ');
}

export function createProgress(stream: NodeJS.WriteStream = process.stderr, plainEverySec = 10): Progress {
  if (stream.isTTY && !process.env.CI) {
    let bar: cliProgress.SingleBar | undefined;
    return {
      start(total, startValue, label) {
        bar = new cliProgress.SingleBar(
          {
            format: `${label} {bar} {value}/{total} | {info} | ETA {eta_formatted}`,
            stream,
            hideCursor: true,
            etaBuffer: 20,
            clearOnComplete: false,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, startValue, { info: '' });
      },
      update(value, fields) {
        bar?.update(value, { info: fmtFields(fields) });
      },
      log(line) {
        if (bar) {
          stream.write('\r\x1b[2K');
          stream.write(`${line}\n`);
          bar.render();
        } else stream.write(`${line}\n`);
      },
      stop() {
        bar?.stop();
        bar = undefined;
      },
    };
  }
  let total = 0,
    t0 = 0,
    v0 = 0,
    last = 0,
    label = '';
  return {
    start(t, s, l) {
      total = t;
      v0 = s;
      label = l;
      t0 = Date.now();
      last = 0;
    },
    update(value, fields) {
      const now = Date.now();
      if (now - last < plainEverySec * 1000 && value < total) return;
      last = now;
      const rate = (value - v0) / Math.max(1e-3, (now - t0) / 1000);
      stream.write(`${label} ${value}/${total} | ${fmtFields(fields)} | ETA ${fmtEta((total - value) / rate)}\n`);
    },
    log(line) {
      stream.write(`${line}\n`);
    },
    stop() {},
  };
}
