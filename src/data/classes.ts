/**
 * Class tables for sources whose labels are free text (CSV columns, folder names):
 * integer labels keep their value (folder "3" is class 3), anything else is numbered
 * in sorted order.
 * @module
 */

/** Class names and a name → index map built from the values seen. */
export interface ClassTable {
  names: string[];
  index: Map<string, number>;
}

/**
 * Builds a class table: if every value is a non-negative integer the classes are
 * "0".."max" (so gaps are kept), otherwise the sorted distinct values.
 */
export function classTable(values: Iterable<string>): ClassTable {
  const distinct = [...new Set(values)];
  if (distinct.length > 0 && distinct.every((v) => /^\d+$/.test(v))) {
    const max = Math.max(...distinct.map(Number));
    const names = Array.from({ length: max + 1 }, (_, i) => String(i));
    const index = new Map(distinct.map((v) => [v, Number(v)]));
    return { names, index };
  }
  const names = distinct.sort();
  return { names, index: new Map(names.map((v, i) => [v, i])) };
}
