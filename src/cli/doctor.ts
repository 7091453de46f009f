// `doctor`: checks the native backend on this machine (both CLIs).
import { Command } from 'commander';
import { selfCheck } from '../backend/selfcheck.js';
import { UserError } from './errors.js';
import { withExamples, type Registrar } from './common.js';

export const registerDoctor: Registrar = (program, ctx) => {
  const cmd = new Command('doctor')
    .description('check the native kernels, the GPU and cuBLAS on this machine')
    .option('--json', 'print the results as JSON')
    .action((opts: { json?: boolean }) => {
      const results = selfCheck();
      if (opts.json) console.log(JSON.stringify(results, null, 2));
      else for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(18)} ${r.detail}`);
      const bad = results.filter((r) => !r.ok);
      if (bad.length) throw new UserError(`${bad.length} check(s) failed: ${bad.map((r) => r.name).join(', ')}`);
    });
  program.addCommand(withExamples(cmd, [`${ctx.name} doctor`, `${ctx.name} doctor --json`]));
};
