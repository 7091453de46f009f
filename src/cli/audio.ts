// The mamba-audio CLI: audio data commands and the model commands shared with mamba-dna.
import { createProgram, runMain, type Registrar } from './common.js';
import { registerDoctor } from './doctor.js';
import { registerModelCommands } from './model-commands.js';
import { registerGenerate } from './generate-command.js';
import { registerConvert } from './convert-command.js';
import { registerAudioData } from './audio-data.js';
import { registerAudioWorkflows } from './audio-workflows.js';

export const audioRegistrars: Registrar[] = [
  registerModelCommands,
  registerGenerate,
  registerAudioData,
  registerAudioWorkflows,
  registerDoctor,
  registerConvert,
];

export async function main(argv: string[]): Promise<never> {
  const program = createProgram(
    { domain: 'audio', name: 'mamba-audio' },
    'Mamba selective state space models for audio: tokenize WAV, train, evaluate, generate and classify',
    audioRegistrars,
  );
  return runMain(program, argv);
}
