/**
 * Whether ops record the autograd graph. Kept apart from the tape so ops can ask without
 * importing the tape (which itself calls ops).
 * @module
 */

let gradEnabled = true;

/** Whether ops currently record graph nodes. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording the graph (evaluation, optimizer updates). */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}
