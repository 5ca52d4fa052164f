/**
 * Reads a text file as lines, tolerating what real label files contain (a UTF-8 BOM,
 * CRLF line endings, trailing spaces, blank lines) and reporting each kind once per file
 * with its first line, so a 5500-line file with CRLF endings gives one problem, not 5500.
 * Lines are capped at {@link MAX_LINE_LENGTH} characters.
 * @module
 */

import type { ProblemLog } from "./problems.ts";

/**
 * Longest line the line and CSV readers accept, in characters (1 MiB). A label line is a
 * path and a few values; a longer one means a binary or damaged file, and carrying it into
 * messages would flood the output and memory.
 */
export const MAX_LINE_LENGTH = 1 << 20;

/**
 * The error for a line (or CSV record) longer than {@link MAX_LINE_LENGTH}: one line naming
 * the file and the line, never quoting it.
 * @param prefix the start of the message, naming the file: `Cannot read list file "f"`
 * @param line its 1-based number
 * @param length its length in characters, or undefined when it was not read to its end
 * @param hint what may be wrong, in parentheses at the end
 */
export function lineTooLongError(
  prefix: string,
  line: number,
  length?: number,
  hint = "one entry per line; is it a text file?",
): Error {
  const size = length === undefined ? `more than ${MAX_LINE_LENGTH}` : `${length}`;
  return new Error(
    `${prefix}: line ${line} is ${size} characters long: expected at most ${MAX_LINE_LENGTH} ` +
      `(${hint})`,
  );
}

/** One non-blank line with its 1-based line number, trimmed of surrounding whitespace. */
export interface TextLine {
  line: number;
  text: string;
}

/**
 * Largest label, list, manifest or ratings file the readers accept (256 MiB): far above
 * any real one, and below what a JavaScript string can hold once decoded.
 */
export const MAX_TEXT_FILE_BYTES = 256 * 2 ** 20;

/**
 * Reads the bytes of `path`, throwing `Cannot read <what> "path": <reason>`. Only regular
 * files of at most {@link MAX_TEXT_FILE_BYTES} are read: a device such as /dev/zero would
 * be read until memory runs out, and a FIFO would block forever.
 */
export async function readFileOrThrow(path: string, what: string): Promise<Uint8Array> {
  const fail = (reason: string): never => {
    throw new Error(`Cannot read ${what} "${path}": ${reason}`);
  };
  const why = (e: unknown) =>
    e instanceof Deno.errors.NotFound
      ? "file not found"
      : e instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : (e as Error).message;
  let info: Deno.FileInfo | undefined;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    fail(why(e));
  }
  if (info!.isDirectory) fail("it is a directory");
  if (!info!.isFile) fail("it is not a regular file (a device, pipe or socket)");
  if (info!.size > MAX_TEXT_FILE_BYTES) {
    fail(`it is ${info!.size} bytes: expected at most ${MAX_TEXT_FILE_BYTES}`);
  }
  try {
    return await Deno.readFile(path);
  } catch (e) {
    return fail(why(e));
  }
}

/**
 * Splits text into trimmed non-blank lines, reporting oddities to `log` under `file`.
 * @param what names the file's role in the error message ("list file")
 * @throws {Error} when a line is longer than {@link MAX_LINE_LENGTH}
 */
export function splitLines(
  text: string,
  file: string,
  log: ProblemLog,
  what = "text file",
): TextLine[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  // Found before splitting, so a huge line is never copied.
  for (let start = 0, line = 1; start < text.length; line++) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    if (end - start > MAX_LINE_LENGTH + 1) { // + 1: a CR before the LF
      throw lineTooLongError(`Cannot read ${what} "${file}"`, line, end - start);
    }
    start = end + 1;
  }
  const raw = text.split("\n");
  // A final newline leaves one empty element that is not a blank line.
  if (raw.length > 0 && raw[raw.length - 1] === "") raw.pop();
  const odd = { crlf: [0, 0], space: [0, 0], blank: [0, 0] };
  const note = (k: keyof typeof odd, line: number) => {
    if (odd[k][0]++ === 0) odd[k][1] = line;
  };
  const out: TextLine[] = [];
  raw.forEach((s, i) => {
    const line = i + 1;
    if (s.endsWith("\r")) {
      note("crlf", line);
      s = s.slice(0, -1);
    }
    const t = s.trim();
    if (t === "") {
      note("blank", line);
      return;
    }
    if (t !== s) note("space", line);
    out.push({ line, text: t });
  });
  const lines = (n: number) => `${n} line${n === 1 ? "" : "s"}`;
  const { crlf, space, blank } = odd;
  if (crlf[0]) log.warn(file, crlf[1], `CRLF line endings on ${lines(crlf[0])}; read as LF`);
  if (space[0]) {
    log.warn(file, space[1], `leading or trailing whitespace on ${lines(space[0])}; ignored`);
  }
  if (blank[0]) log.warn(file, blank[1], `${lines(blank[0])} blank; ignored`);
  return out;
}

/** Reads `path` and splits it with {@link splitLines}; throws if it cannot be read. */
export async function readTextLines(
  path: string,
  what: string,
  log: ProblemLog,
): Promise<TextLine[]> {
  const bytes = await readFileOrThrow(path, what);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new Error(
      `Cannot read ${what} "${path}": line ${firstNonUtf8Line(bytes)}: it is not UTF-8 text`,
    );
  }
  return splitLines(text, path, log, what);
}

/** 1-based line of the first byte sequence that is not UTF-8 (for the error message). */
function firstNonUtf8Line(bytes: Uint8Array): number {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let line = 1, start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i < bytes.length && bytes[i] !== 0x0a) continue;
    try {
      decoder.decode(bytes.subarray(start, i));
    } catch {
      return line;
    }
    line++;
    start = i + 1;
  }
  return line;
}
