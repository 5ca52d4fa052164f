/**
 * Reads a text file as lines, tolerating what real label files contain (a UTF-8 BOM,
 * CRLF line endings, trailing spaces, blank lines) and reporting each kind once per file
 * with its first line, so a 5500-line file with CRLF endings gives one problem, not 5500.
 * @module
 */

import type { ProblemLog } from "./problems.ts";

/** One non-blank line with its 1-based line number, trimmed of surrounding whitespace. */
export interface TextLine {
  line: number;
  text: string;
}

/** Reads the bytes of `path`, throwing `Cannot read <what> "path": <reason>`. */
export async function readFileOrThrow(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound
      ? "file not found"
      : e instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : (e as Error).message;
    throw new Error(`Cannot read ${what} "${path}": ${reason}`);
  }
}

/** Splits text into trimmed non-blank lines, reporting oddities to `log` under `file`. */
export function splitLines(text: string, file: string, log: ProblemLog): TextLine[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
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
  return splitLines(text, path, log);
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
