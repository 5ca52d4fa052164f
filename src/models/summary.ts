/**
 * A network's size and cost, as the paper's Table 11 and torchvision's tables report them:
 * trained parameters (the policy logits excluded) and multiply-adds of one forward pass
 * per image, counted by running one (ops/mac_meter.ts).
 * @module
 */
import { countMacs } from "../ops/mac_meter.ts";
import { noGrad } from "../tensor/grad_mode.ts";
import { scope, zeros } from "../tensor/tensor.ts";
import type { MultiTaskNet } from "./network.ts";

/** Size and cost of a network. */
export interface ModelSummary {
  /** Trained parameters (network weights and heads; the policy logits excluded). */
  params: number;
  /**
   * Giga multiply-adds of one image's eval-mode pass through the trunk and the first
   * database's heads, at `imageSize` (torchvision's "GFLOPS").
   */
  gflops: number;
  /** The input side it was measured at. */
  imageSize: number;
}

/** Counts `net`'s parameters and the multiply-adds of one image at `imageSize`. */
export function modelSummary(net: MultiTaskNet, imageSize: number): ModelSummary {
  const params = net.weightParameters().reduce((a, t) => a + t.size, 0);
  const backend = net.backend;
  const db = net.config.databases[0];
  const macs = countMacs(() =>
    noGrad(() =>
      scope(() => {
        net.forward(zeros([1, 3, imageSize, imageSize], { backend }), db);
      })
    )
  );
  return { params, gflops: macs / 1e9, imageSize };
}
