// Errors for bad audio input. The library throws AudioDataError with a one-line message that names the
// file; the CLI prints the message alone (no stack trace).

export class AudioDataError extends Error {
  override name = 'AudioDataError';
}
