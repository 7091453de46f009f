// One writer for bench/README.md: each benchmark replaces (or appends) its own "## heading" section,
// leaving the others as they are; the file is written to a temp name and renamed.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const README = join(dirname(fileURLToPath(import.meta.url)), 'README.md');

/** `section` starts with its own "## heading" line. */
export function writeReadmeSection(section) {
  const heading = section.slice(0, section.indexOf('\n'));
  if (!heading.startsWith('## ')) throw new Error(`a bench/README.md section must start with "## ", got "${heading}"`);
  const body = `${section.trimEnd()}\n`;
  const text = existsSync(README) ? readFileSync(README, 'utf8') : '# Benchmarks\n';
  // the heading as a whole line, so "## CUDA scan" does not match "## CUDA scan backward..."
  const at = text.startsWith(`${heading}\n`) ? 0 : text.indexOf(`\n${heading}\n`) + 1;
  let out;
  if (at > 0 || text.startsWith(`${heading}\n`)) {
    const next = text.indexOf('\n## ', at + heading.length);
    out = `${text.slice(0, at)}${body}${next >= 0 ? `\n${text.slice(next + 1)}` : ''}`;
  } else {
    out = `${text.trimEnd()}\n\n${body}`;
  }
  writeFileSync(`${README}.tmp`, out);
  renameSync(`${README}.tmp`, README);
  console.log(`wrote bench/README.md section "${heading.slice(3)}"`);
}
