// The DNA inference workflows: per-base tracks, variant effect scores, embeddings.
import type { Registrar } from './common.js';
import { registerEmbed } from './embed-command.js';
import { registerScore } from './score-command.js';
import { registerVariants } from './variants-command.js';

export const registerDnaWorkflows: Registrar = (program, ctx) => {
  registerScore(program, ctx);
  registerVariants(program, ctx);
  registerEmbed(program, ctx);
};
