/**
 * Class tables, and the checks that keep one odd label from reshaping a task.
 *
 * A label's classes are either class ids (integers ≥ 0 written in digits: the id is the
 * class index, so folder "3" is class 3 and the table is "0".."max") or names (numbered in
 * sorted order). Readers sort each label column out with {@link labelColumn}: a value that
 * is not a class of its column (`-1`, `2.5`, `NaN`, `1e0` among ids; a number among names;
 * `NA`) is a label error, recorded with its file and line, and left out. {@link checkLabel}
 * adds what only the whole table shows: classes no image has (`999` beside 0–4), names that
 * differ only in case or surrounding spaces (`f` beside `F`), and a class count the task
 * declares. {@link taskClasses} refuses a task whose label has any of these.
 * @module
 */

import { formatProblem, type Problem, quote } from "./problems.ts";
import type { ClassOrigin, Dataset } from "./records.ts";

/**
 * Most classes one label may have. Class ids are class indices, so an id "99999999999" in a
 * hand-edited file would otherwise ask for a table of 10^11 names.
 */
export const MAX_CLASSES = 1000;

const ID = /^\d+$/;
/** Spellings of "no value" that spreadsheets and data-frame exports write into cells. */
const MISSING = /^(nan|n\/?a|#n\/a|null|undefined|\?)$/i;

/** True for a value that reads as a number (`-1`, `2.5`, `1e0`, `0x1F`, `Infinity`). */
function looksNumeric(v: string): boolean {
  const t = v.trim();
  return t !== "" && (!Number.isNaN(Number(t)) || /^[+-]?inf(inity)?$/i.test(t));
}

/** Class names and a name → index map built from the values seen. */
export interface ClassTable {
  names: string[];
  index: Map<string, number>;
}

/**
 * Builds a class table: if every value is an integer ≥ 0 below {@link MAX_CLASSES} the
 * classes are "0".."max" (so gaps are kept: {@link checkLabel} reports them), otherwise the
 * sorted distinct values.
 */
export function classTable(values: Iterable<string>): ClassTable {
  const distinct = [...new Set(values)];
  const max = distinct.reduce((m, v) => Math.max(m, Number(v)), -1);
  if (distinct.length > 0 && distinct.every((v) => ID.test(v)) && max < MAX_CLASSES) {
    const names = Array.from({ length: max + 1 }, (_, i) => String(i));
    const index = new Map(distinct.map((v) => [v, Number(v)]));
    return { names, index };
  }
  const names = distinct.sort();
  return { names, index: new Map(names.map((v, i) => [v, i])) };
}

/** One label value as read, and where. */
export interface LabelCell {
  value: string;
  file: string;
  line?: number;
}

/** A label column sorted out by {@link labelColumn}. */
export interface LabelColumn {
  /** "ids": integers ≥ 0 that are the class indices; "names": text, numbered in sorted order. */
  kind: "ids" | "names";
  /** Class table of the values that are labels of the column. */
  table: ClassTable;
  /** Where each class was first seen (index = class). */
  origins: (ClassOrigin | undefined)[];
  /** Cells (index into the cells given) that are not a label: skip reason and message. */
  bad: Map<number, { reason: string; message: string }>;
}

/**
 * Sorts out one label column (or the labels of a list file, `kind` "ids"): its classes are
 * ids when at least as many values read as numbers as not, else names. A value is not a
 * label of the column (and is in `bad` with a message naming it and what was expected) when
 * it spells a missing value (`NA`, `NaN`, `null`, `?`), or is not an integer ≥ 0 written in
 * digits in a column of ids (`-1`, `2.5`, `1e0`, `+2`, `F`), or is {@link MAX_CLASSES} or
 * more, or reads as a number in a column of names.
 */
export function labelColumn(
  label: string,
  cells: readonly LabelCell[],
  kind?: "ids",
): LabelColumn {
  let numeric = 0, text = 0;
  for (const { value } of cells) {
    if (MISSING.test(value.trim())) continue;
    if (looksNumeric(value)) numeric++;
    else text++;
  }
  const k = kind ?? (numeric > 0 && numeric >= text ? "ids" : "names");
  const names = k === "names"
    ? [
      ...new Set(
        cells.map((c) => c.value).filter((v) => !MISSING.test(v.trim()) && !looksNumeric(v)),
      ),
    ].sort()
    : [];
  const sample = names.slice(0, 3).map((n) => quote(n, 20)).join(", ") +
    (names.length > 3 ? ", …" : "");
  const bad = new Map<number, { reason: string; message: string }>();
  const good: number[] = [];
  cells.forEach(({ value }, i) => {
    const is = `label ${quote(label, 40)} is ${quote(value)}`;
    if (MISSING.test(value.trim())) {
      const message = `${is}, which reads as a missing value: leave the cell empty for an ` +
        `unknown label`;
      bad.set(i, { reason: "bad label", message });
    } else if (k === "ids" && !ID.test(value)) {
      const message = `${is}: expected a class id, an integer ≥ 0 written in digits`;
      bad.set(i, { reason: "bad label", message });
    } else if (k === "ids" && Number(value) >= MAX_CLASSES) {
      const message = `${is}: expected a class id below ${MAX_CLASSES} (the most classes ` +
        `a label may have)`;
      bad.set(i, { reason: "label out of range", message });
    } else if (k === "names" && looksNumeric(value)) {
      const message = `${is}, a number in a column of class names (${sample}): expected a name`;
      bad.set(i, { reason: "bad label", message });
    } else good.push(i);
  });
  const table = classTable(good.map((i) => cells[i].value));
  const origins: (ClassOrigin | undefined)[] = Array(table.names.length).fill(undefined);
  for (const i of good) {
    const c = table.index.get(cells[i].value)!;
    if (origins[c] === undefined) {
      const { file, line } = cells[i];
      origins[c] = line === undefined ? { file } : { file, line };
    }
  }
  return { kind: k, table, origins, bad };
}

/** What {@link checkLabel} found for one label of a dataset. */
export interface LabelCheck {
  /** The label. */
  label: string;
  /** "ids" when the class names are "0", "1", … in order, else "names". */
  kind: "ids" | "names";
  /** True when the reader built the class table from the values (false: the format fixes it). */
  derived: boolean;
  /** Class names, index = class (with a declared count of ids: "0".."K−1"). */
  names: string[];
  /** Images per class, in the order of `names`. */
  counts: number[];
  /** Why a task on this label is refused, each located where possible; empty: usable. */
  errors: Problem[];
}

/**
 * Formats class counts for a message: `0: 3, 1: 2, 5–998: none, 999: 1`. Runs of empty
 * ids are joined; past `max` entries the rest is counted.
 */
export function formatClassCounts(
  names: readonly string[],
  counts: readonly number[],
  max = 12,
): string {
  const parts: string[] = [];
  const ids = names.every((n, i) => n === String(i));
  for (let i = 0; i < names.length; i++) {
    let j = i;
    if (ids && counts[i] === 0) { while (j + 1 < names.length && counts[j + 1] === 0) j++; }
    const name = names[i] === "" || /[\s,:]/.test(names[i]) ? quote(names[i], 20) : names[i];
    parts.push(j > i ? `${i}–${j}: none` : `${name}: ${counts[i] || "none"}`);
    i = j;
  }
  if (parts.length <= max) return parts.join(", ");
  return `${parts.slice(0, max).join(", ")}, … (${parts.length - max} more)`;
}

/**
 * Checks one label of a dataset and returns its class table with every reason a task on it
 * would be refused: the label errors its reader recorded (values that are not classes),
 * and, for tables built from the values, classes without images and names that differ
 * only in case or surrounding spaces. With `declared` classes, ids must be below it (the
 * table is extended to it: empty classes are then allowed) and names must be exactly that
 * many.
 */
export function checkLabel(dataset: Dataset, label: string, declared?: number): LabelCheck {
  const table = Object.hasOwn(dataset.classes, label) ? dataset.classes[label] : [];
  const origins = dataset.classOrigins && Object.hasOwn(dataset.classOrigins, label)
    ? dataset.classOrigins[label]
    : undefined;
  const kind = table.length > 0 && table.every((n, i) => n === String(i)) ? "ids" : "names";
  const counts = new Array<number>(table.length).fill(0);
  for (const r of dataset.records) {
    const v = Object.hasOwn(r.labels, label) ? r.labels[label] : undefined;
    if (v !== undefined && Number.isInteger(v) && v >= 0 && v < table.length) counts[v]++;
  }
  const errors = dataset.problems.filter((p) => p.error && p.label === label);
  const defaultFile = origins?.find((o) => o)?.file ?? errors[0]?.file ?? dataset.source;
  const at = (c: number | undefined, message: string): Problem => {
    const o = c === undefined ? undefined : origins?.[c];
    const p: Problem = o?.line === undefined
      ? { file: o?.file ?? defaultFile, message }
      : { file: o.file, line: o.line, message };
    p.label = label;
    p.error = true;
    return p;
  };
  const list = () => formatClassCounts(table, counts);
  const the = `label ${quote(label, 40)}`;
  let names = [...table];
  const validDeclared = declared === undefined ||
    (Number.isInteger(declared) && declared >= 2 && declared <= MAX_CLASSES);
  if (!validDeclared) {
    errors.push(
      at(
        undefined,
        `${declared} classes declared for ${the}: expected an integer from 2 to ${MAX_CLASSES}`,
      ),
    );
  }
  if (origins && kind === "names") {
    // Spellings that differ only in case or surrounding spaces: one class written two ways.
    const groups = new Map<string, number[]>();
    table.forEach((n, c) => {
      const key = n.trim().toLowerCase();
      groups.set(key, [...(groups.get(key) ?? []), c]);
    });
    for (const group of groups.values()) {
      if (group.length < 2) continue;
      // The most used spelling first (on a tie, one without surrounding spaces).
      const spaced = (c: number) => Number(table[c] !== table[c].trim());
      group.sort((a, b) => counts[b] - counts[a] || spaced(a) - spaced(b) || a - b);
      const spellings = group.map((c) => `${quote(table[c], 40)} (${counts[c]})`);
      const both = `${spellings.slice(0, -1).join(", ")} and ${spellings.at(-1)}`;
      errors.push(
        at(
          group.at(-1),
          `${the} is written ${both}, which differ only in case or surrounding spaces: ` +
            `expected one spelling per class`,
        ),
      );
    }
  }
  if (declared !== undefined && validDeclared) {
    if (kind === "ids" && table.length > declared) {
      let worst = -1;
      for (let c = table.length - 1; c >= declared && worst < 0; c--) if (counts[c] > 0) worst = c;
      const beyond = counts.slice(declared).reduce((a, b) => a + b, 0);
      errors.push(
        worst >= 0
          ? at(
            worst,
            `${the} is ${worst}: expected a class id below ${declared} (${declared} classes ` +
              `declared; ${beyond} image${beyond === 1 ? "" : "s"} with ids ≥ ${declared}` +
              `${counts[0] === 0 ? "; none with id 0: do the ids start at 1?" : ""})`,
          )
          : at(
            undefined,
            `${the} has ${table.length} classes (ids 0–${table.length - 1}), more than the ` +
              `${declared} declared`,
          ),
      );
    } else if (kind === "ids") {
      names = Array.from({ length: declared }, (_, i) => String(i));
    } else if (table.length !== declared) {
      const rarest = table.length > declared
        ? counts.reduce((best, n, c) => (n <= counts[best] ? c : best), 0)
        : undefined;
      errors.push(
        at(
          rarest,
          `${the} has ${table.length} class${table.length === 1 ? "" : "es"} (${list()}): ` +
            `expected the ${declared} declared`,
        ),
      );
    }
  } else if (origins && counts.some((n) => n === 0)) {
    const empty = counts.filter((n) => n === 0).length;
    const what = `${empty} of its ${table.length} classes empty (${list()})`;
    const fromOne = kind === "ids" && empty === 1 && counts[0] === 0;
    const fix = fromOne
      ? "class ids start at 1: expected them to start at 0 (subtract 1 from every id)"
      : kind === "ids"
      ? "expected class ids 0..K−1 with every class used, or a declared class count K " +
        "(--task NAME=DB:LABEL:λ:K)"
      : "expected every class to have images, or a declared class count " +
        "(--task NAME=DB:LABEL:λ:K)";
    // Name the odd value when the ids after the first empty class are a few images: 999
    // beside 0–4 (but not 1–5 with no 0, where the whole numbering is off by one).
    const first = counts.indexOf(0);
    const after = counts.slice(first + 1).reduce((a, b) => a + b, 0);
    const total = counts.reduce((a, b) => a + b, 0);
    let odd = -1;
    if (kind === "ids" && after > 0 && after * 2 < total) {
      for (let c = first + 1; c < counts.length; c++) {
        if (counts[c] > 0 && (odd < 0 || counts[c] <= counts[odd])) odd = c;
      }
    }
    errors.push(
      odd >= 0
        ? at(odd, `${the} is ${odd}, which leaves ${what}: ${fix}`)
        : at(undefined, `${the} leaves ${what}: ${fix}`),
    );
  }
  return { label, kind, derived: origins !== undefined, names, counts, errors };
}

/** Every label error of a dataset, label by label (see {@link checkLabel}). */
export function labelErrors(dataset: Dataset): Problem[] {
  return Object.keys(dataset.classes).flatMap((l) => checkLabel(dataset, l).errors);
}

/**
 * The class names a task trains on (its label's table; "0".."K−1" for a declared count K
 * of ids), after {@link checkLabel}: a task whose label has any error is refused.
 * @throws {Error} `Cannot use label "L" for task "T": FILE:LINE: <first error> (N more …)`
 */
export function taskClasses(
  dataset: Dataset,
  task: { name: string; label: string; classes?: number },
): string[] {
  const { names, errors } = checkLabel(dataset, task.label, task.classes);
  if (errors.length === 0) return names;
  const more = errors.length === 1
    ? ""
    : ` (${errors.length - 1} more: "deno task data info ${dataset.source}" lists them)`;
  throw new Error(
    `Cannot use label ${quote(task.label, 40)} for task ${quote(task.name, 40)}: ` +
      `${formatProblem(errors[0])}${more}`,
  );
}
