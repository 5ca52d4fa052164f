/**
 * The one error type every weights reader throws for a bad file, so callers (and the fuzz
 * tests) can tell "this file is malformed or hostile" apart from a bug or an I/O failure.
 * @module
 */

/** Options of {@linkcode WeightsFormatError}. */
export interface WeightsFormatErrorOptions {
  /** The file (or source label) that was being read. */
  file: string;
  /** The tensor or entry key involved, when there is one. */
  key?: string;
  /** What is wrong, without the file (the end of the message); defaults to the message. */
  detail?: string;
  /** The underlying error, when one caused this. */
  cause?: unknown;
}

/**
 * A weights file (safetensors, PyTorch `.pth`) is malformed, hostile or uses an unsupported
 * feature. The message names the file and, where it applies, the tensor key.
 */
export class WeightsFormatError extends Error {
  /** The file (or source label) that was being read. */
  readonly file: string;
  /** The tensor or entry key involved, when there is one. */
  readonly key: string | undefined;
  /** What is wrong, without the file: for callers that word the message their way. */
  readonly detail: string;

  /**
   * Creates the error.
   * @param message the full message, e.g. `Cannot read safetensors file "a": ...`
   * @param options the file, key and cause
   */
  constructor(message: string, options: WeightsFormatErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "WeightsFormatError";
    this.file = options.file;
    this.key = options.key;
    this.detail = options.detail ?? message;
  }
}

/**
 * Quotes a name taken from a file for an error message: JSON-escaped (so control characters
 * cannot forge lines) and cut to 100 characters (so a hostile key cannot bloat the message).
 * @param name a tensor key, entry name or global name
 * @returns the quoted text, e.g. `"conv1.weight"`
 */
export function quote(name: string): string {
  return JSON.stringify(name.length > 100 ? `${name.slice(0, 97)}...` : name);
}
