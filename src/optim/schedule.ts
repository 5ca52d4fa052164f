/**
 * Step-size and temperature schedules. Learning rates follow a cosine from the base
 * value to 1% of it over a stage (Loshchilov & Hutter, SGDR, arXiv:1608.03983), or stay
 * constant; the Gumbel temperature decays geometrically per policy epoch (AdaShare).
 * @module
 */

/**
 * Learning rate at `step` of `total` steps in a stage.
 * @param kind "cosine" anneals to 1% of `base`; "constant" keeps it
 */
export function learningRate(
  kind: "cosine" | "constant",
  base: number,
  step: number,
  total: number,
): number {
  if (kind === "constant" || total <= 1) return base;
  const t = Math.min(Math.max(step / (total - 1), 0), 1);
  const floor = 0.01 * base;
  return floor + (base - floor) * 0.5 * (1 + Math.cos(Math.PI * t));
}

/** Gumbel temperature after `policyEpochs` policy epochs: τ₀·decay^epochs. */
export function temperature(tau0: number, decay: number, policyEpochs: number): number {
  return tau0 * Math.pow(decay, policyEpochs);
}

/**
 * Curriculum window: how many of the last blocks follow the policy after `policyEpochs`
 * (AdaShare: ⌊epochs / speed⌋ + 1; a speed below 1 opens several blocks per epoch).
 */
export function curriculumWindow(blocks: number, speed: number, policyEpochs: number): number {
  // The epsilon keeps 3 / 0.1 (29.999…) at 30.
  return Math.min(blocks, 1 + Math.floor(policyEpochs / speed + 1e-9));
}
