/**
 * The draws of a class-balanced sampler (`--balance sampler`, src/train/class_balance.ts):
 * one training epoch's record order with every class drawn equally often.
 * @module
 */
import type { Rng } from "../random/rng.ts";

/**
 * The order of one training epoch of a class-balanced sampler: as many draws (with
 * replacement) as there are usable images; an image without the balanced label is drawn
 * with its natural share (u / N of the draws for u such images), every other draw first
 * picks a class uniformly among the classes that have images, then an image of it
 * uniformly. Seeded by `rng` (the loader's Rng(seed, epoch, 2)), so a resumed run draws the
 * same epochs.
 * @param usable indices of the usable records
 * @param groups class of each record (index = record; negative: no label)
 * @param rng the epoch's random stream
 * @returns record indices, `usable.length` of them
 */
export function balancedOrder(
  usable: readonly number[],
  groups: ArrayLike<number>,
  rng: Rng,
): number[] {
  const byClass = new Map<number, number[]>();
  const unlabelled: number[] = [];
  for (const i of usable) {
    const g = groups[i];
    if (g < 0) unlabelled.push(i);
    else {
      let list = byClass.get(g);
      if (!list) byClass.set(g, list = []);
      list.push(i);
    }
  }
  const classes = [...byClass.keys()].sort((a, b) => a - b).map((c) => byClass.get(c)!);
  if (classes.length === 0) return [...usable];
  const pUnlabelled = unlabelled.length / usable.length;
  const out: number[] = [];
  for (let j = 0; j < usable.length; j++) {
    if (unlabelled.length > 0 && rng.next() < pUnlabelled) {
      out.push(unlabelled[rng.int(unlabelled.length)]);
    } else {
      const list = classes[rng.int(classes.length)];
      out.push(list[rng.int(list.length)]);
    }
  }
  return out;
}
