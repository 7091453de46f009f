// Prints each skipped suite after the run (the default reporter only counts them), with the title that names
// what it needs. Under MAMBA_REQUIRE_TOOLS=1 (CI) any skip outside the GPU suites fails the run.
import { relative } from 'node:path';
import type { Reporter, TestCase, TestModule } from 'vitest/node';

/** The skipped test's own title where it says what it needs ("(skipped: ...", "(needs ..."), else its outermost suite's. */
function skippedUnit(t: TestCase): string {
  if (/\((skipped|needs)\b/.test(t.name)) return t.fullName;
  let top: { name: string; fullName: string } = t;
  for (let p = t.parent; p.type === 'suite'; p = p.parent) top = p;
  return top.fullName;
}

const isGpu = (s: string) => /\bcuda\b|\bgpu\b/i.test(s);

export default class SkipReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const counts = new Map<string, number>();
    for (const m of modules) {
      for (const t of m.children.allTests('skipped')) {
        const key = `${relative(process.cwd(), m.moduleId)} > ${skippedUnit(t)}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    for (const [k, n] of counts) {
      const why = isGpu(k) && !k.includes('(skipped:') ? ' (skipped: needs a CUDA GPU)' : '';
      console.log(`skipped: ${k}${why} (${n} test${n === 1 ? '' : 's'})`);
    }
    const notGpu = [...counts.keys()].filter((k) => !isGpu(k));
    if (process.env.MAMBA_REQUIRE_TOOLS === '1' && notGpu.length > 0) {
      console.error(`MAMBA_REQUIRE_TOOLS=1: only GPU suites may skip, but these did: ${notGpu.join('; ')}`);
      process.exitCode = 1;
    }
  }
}
