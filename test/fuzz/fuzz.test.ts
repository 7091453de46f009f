// A short seeded fuzzing run over every parser (test/fuzz/targets.mjs): it fails on any unexpected
// exception, hang, crash or disagreement with a reference decoder, outside the report-only parsers
// (config.json, whose bounds another change adds), whose findings are printed. `npm run fuzz -- --minutes N`
// runs the same harness longer and writes a report under bench/results/. Needs dist/ (npx tsc).
import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain ES module without types, shared with bench/fuzz.js
import { failing, reportMarkdown, runFuzz } from './harness.mjs';

const SEED = 20261201;
const PER_TARGET = 400; // 11 parsers: 4,400 inputs, about 30 s on one core of the 2-core box

describe('fuzzing', () => {
  it('the harness classifies a raw exception, a hang, a crash, a disagreement and a clean refusal', async () => {
    const extraTargets = new URL('./selftest-targets.mjs', import.meta.url).href;
    // running out of memory takes a loaded machine seconds of garbage collection: a generous time limit
    // there, a short one for the hang
    const slow = await runFuzz({
      seed: 1,
      inputsPerTarget: 1,
      timeoutMs: 30_000,
      memoryMb: 64,
      extraTargets,
      targets: ['selftest-raw', 'selftest-oom', 'selftest-disagree', 'selftest-clean'],
    });
    const hang = await runFuzz({
      seed: 1,
      inputsPerTarget: 1,
      timeoutMs: 1000,
      extraTargets,
      targets: ['selftest-hang'],
    });
    const targets = [...slow.targets, ...hang.targets];
    const outcome = (name: string) =>
      Object.entries(targets.find((t: { name: string }) => t.name === name).outcomes).find(([, n]) => n === 1)?.[0];
    expect(outcome('selftest-raw')).toBe('unexpected');
    expect(outcome('selftest-hang')).toBe('hang');
    expect(outcome('selftest-oom')).toBe('crash');
    expect(outcome('selftest-disagree')).toBe('disagreement');
    expect(outcome('selftest-clean')).toBe('clean-error');
    expect(slow.findings.find((f: { target: string }) => f.target === 'selftest-raw').message).toMatch(/^RangeError: /);
    expect(slow.findings.find((f: { target: string }) => f.target === 'selftest-oom').message).toMatch(/out of memory/);
  }, 90_000);

  it(`${PER_TARGET} mutated inputs per parser: no unexpected exception, hang, crash or disagreement`, async () => {
    const r = await runFuzz({ seed: SEED, inputsPerTarget: PER_TARGET, timeoutMs: 5000, memoryMb: 512 });
    const md = reportMarkdown(r);
    if (r.findings.length) console.log(md); // report-only findings are shown, not failed
    expect(
      failing(r).map(
        (f: { target: string; outcome: string; message: string }) => `${f.target} ${f.outcome}: ${f.message}`,
      ),
    ).toEqual([]);
    for (const t of r.targets) {
      expect(t.inputs).toBe(PER_TARGET);
      // the mutations reach both sides of every parser: some inputs parse, some are refused
      expect(t.outcomes['clean-error']).toBeGreaterThan(0);
      expect(t.outcomes.accepted).toBeGreaterThan(0);
    }
  }, 180_000);
});
