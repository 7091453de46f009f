// The shared command builder of both CLIs: one program factory, flag parsers that give usage errors,
// and a main() that maps errors to exit codes (0 done, 1 failure, 2 bad usage).
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { Domain } from '../data/types.js';
import { UsageError, UserError } from './errors.js';

/** the one Domain type lives with the data contract */
export type { Domain };

export interface CliContext {
  domain: Domain;
  name: string;
}

/** A registrar adds commands to a program. Domain modules export one each. */
export type Registrar = (program: Command, ctx: CliContext) => void;

export function createProgram(ctx: CliContext, description: string, registrars: Registrar[]): Command {
  const program = new Command(ctx.name)
    .description(description)
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError(`(run ${ctx.name} --help for usage)`)
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride();
  program.addHelpCommand(false);
  for (const reg of registrars) reg(program, ctx);
  // every subcommand inherits exitOverride and the help hint
  for (const cmd of program.commands)
    cmd.exitOverride().showHelpAfterError(`(run ${ctx.name} ${cmd.name()} --help for usage)`);
  return program;
}

function packageVersion(): string {
  return '0.1.0';
}

/** Runs a program and exits with 0, 1 (failure) or 2 (bad usage), printing one clean line on error. */
export async function runMain(program: Command, argv: string[]): Promise<never> {
  let code = 0;
  // a reader that stops early (`| head`) closes the pipe: stop quietly, with the status a SIGPIPE death gives
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(EXIT_BROKEN_PIPE);
    process.stderr.write(`${program.name()}: error: cannot write stdout (${e.code ?? e.message})\n`);
    process.exit(1);
  });
  try {
    await program.parseAsync(argv);
  } catch (e) {
    code = exitCodeFor(program.name(), e);
  }
  // let pending output flush before leaving
  process.exitCode = code;
  await new Promise((r) => setImmediate(r));
  process.exit(code);
}

/** 128 + SIGPIPE, as a shell reports a tool killed by a closed pipe. */
export const EXIT_BROKEN_PIPE = 141;

export function exitCodeFor(name: string, e: unknown): number {
  if ((e as NodeJS.ErrnoException)?.code === 'EPIPE') return EXIT_BROKEN_PIPE;
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    return 2; // commander already printed the message
  }
  if (e instanceof UsageError) {
    process.stderr.write(`${name}: error: ${e.message}\n`);
    return 2;
  }
  if (e instanceof UserError) {
    process.stderr.write(`${name}: error: ${e.message}\n`);
    return 1;
  }
  const err = e as Error;
  process.stderr.write(`${name}: error: ${err?.message ?? String(e)}\n`);
  if (process.env.MAMBA_DEBUG) process.stderr.write(`${err?.stack ?? ''}\n`);
  return 1;
}

// ---- flag parsers (commander argParsers: throw InvalidArgumentError -> usage error, exit 2) ----

export function parseIntArg(min = -Infinity, max = Infinity) {
  return (v: string): number => {
    const s = v.trim().replace(/_/g, '');
    // allow powers of two written 2^20 for sequence lengths
    const m = /^2\^(\d+)$/.exec(s);
    const n = m ? 2 ** Number(m[1]) : Number(s);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got "${v}"`);
    if (n < min || n > max) throw new InvalidArgumentError(`expected an integer in ${min}..${max}, got ${n}`);
    return n;
  };
}

export function parseFloatArg(min = -Infinity, max = Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError(`expected a number, got "${v}"`);
    if (n < min || n > max) throw new InvalidArgumentError(`expected a number in [${min}, ${max}], got ${n}`);
    return n;
  };
}

export function choiceOption(flags: string, description: string, choices: readonly string[], def?: string): Option {
  const o = new Option(flags, description).choices(choices);
  return def === undefined ? o : o.default(def);
}

/** Adds an example block to a command's --help. */
export function withExamples(cmd: Command, examples: string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
}
