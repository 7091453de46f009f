// Errors for bad DNA input. The library throws DnaDataError with a one-line message naming the file and
// the line or byte offset; the CLI prints the message alone (no stack trace).

export class DnaDataError extends Error {
  override name = 'DnaDataError';
}
