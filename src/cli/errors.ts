// Errors the CLIs turn into one clean line and an exit code, never a stack trace.

/** Bad usage (unknown flag, bad value): exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** A problem with the user's input or environment (missing file, bad data): exit 1. */
export class UserError extends Error {
  override name = 'UserError';
}
