// Runs once before the suites: one line saying which outside tools and data packages this machine lacks.
import { available, PROVIDERS } from './tools.js';

export default function setup(): void {
  const missing = Object.keys(PROVIDERS).filter((t) => !available(t));
  if (missing.length === 0) {
    console.log('outside tools: all present (samtools, bgzip, sox, espeak-ng, xz, Debian example data)');
    return;
  }
  const how =
    process.env.MAMBA_REQUIRE_TOOLS === '1'
      ? 'MAMBA_REQUIRE_TOOLS=1: the tests that need them fail'
      : 'their comparisons replay recorded outputs (test/fixtures/README.md), suites that need them skip';
  console.log(`outside tools missing: ${missing.join(', ')}; ${how}`);
}
