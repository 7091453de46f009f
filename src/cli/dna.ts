// The mamba-dna CLI: DNA data commands and the model commands shared with mamba-audio.
import { createProgram, runMain, type Registrar } from './common.js';
import { registerDnaData } from './dna-data.js';
import { registerDoctor } from './doctor.js';
import { registerModelCommands } from './model-commands.js';
import { registerGenerate } from './generate-command.js';
import { registerConvert } from './convert-command.js';
import { registerDnaWorkflows } from './dna-workflows.js';

export const dnaRegistrars: Registrar[] = [
  registerModelCommands,
  registerGenerate,
  registerDnaData,
  registerDnaWorkflows,
  registerDoctor,
  registerConvert,
];

export async function main(argv: string[]): Promise<never> {
  const program = createProgram(
    { domain: 'dna', name: 'mamba-dna' },
    'Mamba selective state space models for DNA: index and read FASTA, train, evaluate, generate and classify',
    dnaRegistrars,
  );
  return runMain(program, argv);
}
