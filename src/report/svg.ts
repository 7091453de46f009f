// Small dependency-free SVG charts for training curves and experiment results, so people look at a
// picture instead of reading JSON. Line charts with linear or log2 x axes and several series.

export interface Series {
  name: string;
  points: [number, number][];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  logX?: boolean;
  width?: number;
  height?: number;
  /** start the y axis here (e.g. 0 for throughput, so small wiggles don't look like trends) */
  yMin?: number;
  /** draw a dashed horizontal reference line, e.g. the order-0 entropy */
  hline?: { y: number; label: string };
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** "Nice" tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

export function lineChart(series: Series[], o: ChartOptions): string {
  const W = o.width ?? 640,
    H = o.height ?? 400;
  const m = { l: 64, r: 16, t: 36, b: 48 };
  const pw = W - m.l - m.r,
    ph = H - m.t - m.b;
  const pts = series
    .flatMap((s) => s.points)
    .filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logX || x > 0));
  const tx = (x: number) => (o.logX ? Math.log2(x) : x);
  let x0 = Math.min(...pts.map(([x]) => tx(x))),
    x1 = Math.max(...pts.map(([x]) => tx(x)));
  let y0 = Math.min(...pts.map(([, y]) => y)),
    y1 = Math.max(...pts.map(([, y]) => y));
  if (o.hline) {
    y0 = Math.min(y0, o.hline.y);
    y1 = Math.max(y1, o.hline.y);
  }
  if (o.yMin !== undefined) y0 = Math.min(y0, o.yMin);
  if (!pts.length) {
    x0 = 0;
    x1 = 1;
    y0 = 0;
    y1 = 1;
  }
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  if (y1 === y0) {
    y0 -= Math.abs(y0) * 0.1 + 1e-9;
    y1 += Math.abs(y1) * 0.1 + 1e-9;
  }
  const pad = (y1 - y0) * 0.05;
  if (o.yMin === undefined || y0 < o.yMin) y0 -= pad;
  y1 += pad;
  const sx = (x: number) => m.l + ((tx(x) - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.t + (1 - (y - y0) / (y1 - y0)) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`);
  // axes and grid
  const xt = o.logX
    ? Array.from({ length: Math.floor(x1) - Math.ceil(x0) + 1 }, (_, i) => 2 ** (Math.ceil(x0) + i))
    : niceTicks(x0, x1);
  for (const v of xt) {
    const X = sx(v);
    out.push(`<line x1="${X}" y1="${m.t}" x2="${X}" y2="${m.t + ph}" stroke="#eee"/>`);
    out.push(
      `<text x="${X}" y="${m.t + ph + 16}" text-anchor="middle">${o.logX ? `2^${Math.round(Math.log2(v))}` : fmt(v)}</text>`,
    );
  }
  for (const v of niceTicks(y0, y1)) {
    const Y = sy(v);
    out.push(`<line x1="${m.l}" y1="${Y}" x2="${m.l + pw}" y2="${Y}" stroke="#eee"/>`);
    out.push(`<text x="${m.l - 6}" y="${Y + 4}" text-anchor="end">${fmt(v)}</text>`);
  }
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.l + pw / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  if (o.hline) {
    const Y = sy(o.hline.y);
    out.push(`<line x1="${m.l}" y1="${Y}" x2="${m.l + pw}" y2="${Y}" stroke="#888" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${m.l + pw - 4}" y="${Y - 4}" text-anchor="end" fill="#666">${esc(o.hline.label)}</text>`);
  }
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length]!;
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!o.logX || x > 0));
    if (p.length > 1)
      out.push(
        `<polyline fill="none" stroke="${c}" stroke-width="2" points="${p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`,
      );
    if (p.length <= 40)
      for (const [x, y] of p) out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${c}"/>`);
    out.push(`<rect x="${m.l + 10}" y="${m.t + 8 + i * 18}" width="12" height="3" fill="${c}"/>`);
    out.push(`<text x="${m.l + 28}" y="${m.t + 13 + i * 18}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

export interface Table {
  header: string[];
  rows: (string | number)[][];
}

/** A titled part of a report: a table, a line of text, or both. */
export interface ReportSection {
  heading: string;
  text?: string;
  table?: Table;
}

function tableHtml(t: Table): string {
  const head = `<tr>${t.header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const row = (r: (string | number)[]) => `<tr>${r.map((c) => `<td>${esc(String(c))}</td>`).join('')}</tr>`;
  return `<table>${head}${t.rows.map(row).join('')}</table>`;
}

/** A one-page HTML report: a title, a table, further sections (data, config, ...), then the SVG files. */
export function htmlReport(title: string, svgFiles: string[], table?: Table, sections: ReportSection[] = []): string {
  const t = table ? tableHtml(table) : '';
  const img = (f: string) => `<div><img src="${esc(f)}" alt="${esc(f)}"></div>`;
  const more = sections
    .map(
      (s) => `<h2>${esc(s.heading)}</h2>${s.text ? `<p>${esc(s.text)}</p>` : ''}${s.table ? tableHtml(s.table) : ''}`,
    )
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:2em}img{max-width:100%;margin:1em 0;border:1px solid #ddd}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style>
</head><body><h1>${esc(title)}</h1>${t}${more}${svgFiles.map(img).join('')}</body></html>\n`;
}

/** A confusion matrix as a table: rows the true class, columns the predicted one. */
export function confusionTable(classes: readonly string[], confusion: number[][]): Table {
  return { header: ['true / predicted', ...classes], rows: confusion.map((r, i) => [classes[i] ?? String(i), ...r]) };
}

/** key/value pairs (a config, the data) as a two-column table; objects are shown as JSON. */
export function keyValueTable(obj: Record<string, unknown>): Table {
  const cell = (v: unknown) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
  const rows = Object.entries(obj)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, cell(v)]);
  return { header: ['', ''], rows };
}
