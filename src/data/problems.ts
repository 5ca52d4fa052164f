/**
 * Problems found while reading a database. Readers never drop data silently: every
 * skipped entry is a problem with `skipped: true` and is tallied under a reason.
 * @module
 */

/** One problem, located by file and (when it has one) 1-based line or sheet row. */
export interface Problem {
  /** The file the problem is in (an image, a label file, a ratings sheet). */
  file: string;
  /** 1-based line (or spreadsheet row) when the problem has one. */
  line?: number;
  /** What is wrong and what the reader did about it. */
  message: string;
  /** True when an entry was left out because of this problem. */
  skipped?: boolean;
  /**
   * The label a value of which is unusable (not a class of its column, a rating outside
   * 1–5): a task on this label is refused until it is fixed (see classes.ts).
   */
  label?: string;
  /** True for a label error: a task on `label` is refused, the rest of the data is usable. */
  error?: boolean;
}

/** Longest piece of a bad value or line that a message quotes. */
export const QUOTE_MAX = 100;

/**
 * `text` in double quotes for a message, cut to {@link QUOTE_MAX} characters with "…" and
 * its full length when longer, so a 50 MB line is not echoed whole.
 */
export function quote(text: string, max = QUOTE_MAX): string {
  // Control characters (a newline in a quoted CSV cell) are escaped: a message stays one line.
  const oneLine = (s: string) =>
    // deno-lint-ignore no-control-regex
    s.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
  if (text.length <= max) return `"${oneLine(text)}"`;
  return `"${oneLine(text.slice(0, max))}…" (${text.length} characters)`;
}

/** Collects problems and counts skipped entries by reason. */
export class ProblemLog {
  /** Every problem in the order found. */
  readonly problems: Problem[] = [];
  /** Skipped entries per reason, e.g. `{"image listed but missing": 3}`. */
  readonly skips: Record<string, number> = {};

  /** Records a problem that changed nothing (the data was read as described). */
  warn(file: string, line: number | undefined, message: string): void {
    this.problems.push(line === undefined ? { file, message } : { file, line, message });
  }

  /** Records a skipped entry under `reason`, with its location and a message. */
  skip(reason: string, file: string, line: number | undefined, message: string): void {
    const p: Problem = line === undefined ? { file, message } : { file, line, message };
    p.skipped = true;
    this.problems.push(p);
    this.skips[reason] = (this.skips[reason] ?? 0) + 1;
  }

  /**
   * Records a label error (see {@link Problem.error}): the value is left out, a task on
   * `label` is refused. With `skipReason`, the entry is also skipped and counted under it.
   */
  labelError(
    label: string,
    file: string,
    line: number | undefined,
    message: string,
    skipReason?: string,
  ): void {
    const p: Problem = line === undefined ? { file, message } : { file, line, message };
    if (skipReason !== undefined) {
      p.skipped = true;
      this.skips[skipReason] = (this.skips[skipReason] ?? 0) + 1;
    }
    p.label = label;
    p.error = true;
    this.problems.push(p);
  }

  /** Adds the problems and skip counts of another log. */
  merge(other: { problems: readonly Problem[]; skips: Readonly<Record<string, number>> }): void {
    this.problems.push(...other.problems);
    for (const [reason, n] of Object.entries(other.skips)) {
      this.skips[reason] = (this.skips[reason] ?? 0) + n;
    }
  }

  /** Total number of skipped entries. */
  get skipped(): number {
    return Object.values(this.skips).reduce((a, b) => a + b, 0);
  }
}

/** Formats a problem as `file:line: message` (the usual compiler-style location). */
export function formatProblem(p: Problem): string {
  return `${p.file}${p.line === undefined ? "" : `:${p.line}`}: ${p.message}`;
}
