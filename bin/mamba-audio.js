#!/usr/bin/env node
import { main } from '../dist/cli/audio.js';
await main(process.argv);
