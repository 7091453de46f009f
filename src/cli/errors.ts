// Errors the CLIs turn into one clean line and an exit code, never a stack trace.

/** Bad usage (unknown flag, bad value): exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A problem with the user's input or environment (missing file, bad data): exit 1. */
export class UserError extends Error {
  override name = 'UserError';
}

/**
 * Runs fn and turns the library's own errors (bad data, config, checkpoint, tensor shapes, training,
 * and file-system errors) into UserError, so the CLI prints their one-line message and exits 1.
 * Anything else is a bug and keeps its stack (shown with MAMBA_DEBUG=1).
 */
export async function asUserErrors<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const err = e as Error & { code?: unknown; path?: string };
    // a reader of our stdout that stopped early (`| head`): runMain exits quietly with 141
    if (err instanceof UserError || err instanceof UsageError || err?.code === 'EPIPE') throw err;
    if (/(Data|Config|Checkpoint|Training|Model|Tensor|Generate|OutOfMemory|Output|Input)Error$/.test(err?.name ?? ''))
      throw new UserError(err.message);
    // a file-system error (ENOENT, EACCES, ...): name the file if node's message does not. Node's own
    // ERR_* codes (a RangeError from a Buffer read, say) are bugs and keep their stack.
    if (typeof err?.code === 'string' && /^E[A-Z0-9]+$/.test(err.code)) {
      throw new UserError(err.path && !err.message.includes(err.path) ? `${err.path}: ${err.message}` : err.message);
    }
    throw err;
  }
}
