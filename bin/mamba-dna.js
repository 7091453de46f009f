#!/usr/bin/env node
import { main } from '../dist/cli/dna.js';
await main(process.argv);
