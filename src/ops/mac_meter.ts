/**
 * Counts the multiply-adds of the convolutions and linear layers run inside
 * {@link countMacs} — a model's cost per image as torchvision's tables give it ("GFLOPS" there
 * are multiply-adds). Ops report to it; outside a count it costs one comparison.
 * @module
 */

let total: number | null = null;

/** Adds `n` multiply-adds to the running count, if one is running (ops call this). */
export function addMacs(n: number): void {
  if (total !== null) total += n;
}

/** Runs `fn` and returns the multiply-adds its convolutions and linear layers did. */
export function countMacs(fn: () => void): number {
  const outer = total;
  total = 0;
  try {
    fn();
    return total;
  } finally {
    total = outer === null ? null : outer + (total ?? 0);
  }
}
