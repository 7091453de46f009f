// Ctrl-C during training: the first SIGINT asks the trainer to save a checkpoint after the current step
// and return; a second one quits at once without saving (exit 130).
export interface Stoppable {
  requestStop(): void;
}

/** Installs the SIGINT handler; returns the function that removes it. */
export function stopOnInterrupt(trainer: Stoppable, log: (line: string) => void): () => void {
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      log('  interrupted: saving a checkpoint after this step (Ctrl-C again to quit without saving)');
      trainer.requestStop();
    } else process.exit(130);
  };
  process.on('SIGINT', onSigint);
  return () => process.off('SIGINT', onSigint);
}
