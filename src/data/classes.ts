/**
 * Class tables for sources whose labels are free text (CSV columns, folder names):
 * integer labels keep their value (folder "3" is class 3), anything else is numbered
 * in sorted order.
 * @module
 */

/**
 * Most classes one label may have. Integer labels keep their value as the class index, so
 * a label "99999999999" in a hand-edited file would otherwise ask for a table of 10^11
 * names; readers skip such entries as "label out of range".
 */
export const MAX_CLASSES = 1000;

/** True when `value` is a decimal integer label at or above {@link MAX_CLASSES}. */
export function isOutOfRangeLabel(value: string): boolean {
  return /^\d+$/.test(value) && Number(value) >= MAX_CLASSES;
}

/** Class names and a name → index map built from the values seen. */
export interface ClassTable {
  names: string[];
  index: Map<string, number>;
}

/**
 * Builds a class table: if every value is a non-negative integer below
 * {@link MAX_CLASSES} the classes are "0".."max" (so gaps are kept), otherwise the sorted
 * distinct values (readers drop out-of-range integers first: {@link isOutOfRangeLabel}).
 */
export function classTable(values: Iterable<string>): ClassTable {
  const distinct = [...new Set(values)];
  const max = distinct.reduce((m, v) => Math.max(m, Number(v)), -1);
  if (distinct.length > 0 && distinct.every((v) => /^\d+$/.test(v)) && max < MAX_CLASSES) {
    const names = Array.from({ length: max + 1 }, (_, i) => String(i));
    const index = new Map(distinct.map((v) => [v, Number(v)]));
    return { names, index };
  }
  const names = distinct.sort();
  return { names, index: new Map(names.map((v, i) => [v, i])) };
}
