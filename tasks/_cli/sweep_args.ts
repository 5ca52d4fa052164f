/**
 * The flags of `deno task sweep-ratios` that are its own: `--ratios` (weight vectors, one λ
 * per task) and `--batches`.
 * @module
 */

/** Largest loss weight in --ratios: far above the paper's (≤ 1), a typo beyond it. */
export const MAX_LAMBDA = 1000;

/**
 * Parses "1:0.7,1:0.6" (or "1:0.6:0.3,1:1:1" for three tasks) into weight vectors of `tasks`
 * decimal weights from 0 to MAX_LAMBDA, not all 0.
 */
export function parseRatios(text: string, tasks: number): number[][] {
  const seen = new Set<string>();
  const form = Array.from({ length: tasks }, (_, i) => `λ${i + 1}`).join(":");
  return text.split(",").map((vector) => {
    const parts = vector.split(":").map((p) => p.trim());
    const ok = parts.every((p) => /^[\d.]+(?:e-?\d+)?$/i.test(p));
    const l = parts.map(Number);
    if (!ok || !l.every(Number.isFinite)) {
      throw new Error(`Cannot parse --ratios: "${vector}" is not of the form ${form}`);
    }
    if (l.length !== tasks) {
      throw new Error(
        `Cannot parse --ratios: "${vector}" has ${l.length} weights, expected ${form} (one ` +
          `per task: the run has ${tasks})`,
      );
    }
    if (l.some((v) => v > MAX_LAMBDA) || l.every((v) => v === 0)) {
      throw new Error(
        `Cannot parse --ratios: "${vector}": each weight must be from 0 to ${MAX_LAMBDA}, ` +
          "and not all 0",
      );
    }
    const key = l.join(":");
    if (seen.has(key)) throw new Error(`Cannot parse --ratios: ${key} is given twice`);
    seen.add(key);
    return l;
  });
}

/** Parses "32,16" into batch sizes (integers ≥ 2; the run config bounds the largest). */
export function parseBatches(text: string): number[] {
  const seen = new Set<number>();
  return text.split(",").map((b) => {
    const n = /^\s*\d+\s*$/.test(b) ? Number(b) : NaN;
    if (!Number.isSafeInteger(n) || n < 2) {
      throw new Error(`Cannot parse --batches: "${b}" is not a batch size ≥ 2`);
    }
    if (seen.has(n)) throw new Error(`Cannot parse --batches: ${n} is given twice`);
    seen.add(n);
    return n;
  });
}
