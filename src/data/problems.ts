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
