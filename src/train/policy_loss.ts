/**
 * AdaShare's policy regularisers (Sun et al., NeurIPS 2020), built from tensor ops (their
 * gradients come from the tape). The formulas follow the published code
 * (envs/blockdrop_env.py: get_sparsity_loss2, get_hamming_loss, with is_sharing and
 * diff_sparsity_weights on, as its configs set them), so the weights 0.05/0.05 mean what
 * they mean there; docs/adashare.md lists each term with its source:
 *   L_sparse = Σ_t mean over the blocks b in the curriculum window of −log p_skip[t,b],
 *              p = softmax(logits): cross-entropy towards "skip", summed over tasks;
 *              pushes towards skipping (cheaper networks);
 *   L_share  = Σ_{i<j} Σ_b w_b·|logit_i[b,exec] − logit_j[b,exec]|, w_b = (b+1)/B:
 *              pulls tasks towards the same decisions (sharing); over all blocks.
 * @module
 */
import { abs, add, log, mul, sub, sum, sumTo } from "../ops/elementwise.ts";
import { slice } from "../ops/shape.ts";
import { softmax } from "../ops/softmax.ts";
import { type Tensor, tensor } from "../tensor/tensor.ts";

/** L_sparse over the last `window` blocks of logits (T, B, 2): summed over tasks. */
export function sparsityLoss(logits: Tensor, window: number): Tensor {
  const [T, B] = logits.shape;
  const mask = new Float32Array(T * B * 2);
  for (let t = 0; t < T; t++) {
    for (let b = B - window; b < B; b++) mask[(t * B + b) * 2 + 1] = 1;
  }
  const logP = log(softmax(logits));
  const picked = mul(logP, tensor(mask, logits.shape, { backend: logits.backend }));
  return mul(sum(picked), -1 / window);
}

/** logits[t, :, 0] as a (B, 1) tensor. */
function execColumn(logits: Tensor, t: number): Tensor {
  const [, B] = logits.shape;
  const rows = slice(logits, t * B * 2, [B, 2]);
  const first = tensor([1, 0], [1, 2], { backend: logits.backend });
  return sumTo(mul(rows, first), [B, 1]);
}

/** L_share over logits (T, B, 2); null for a single task (nothing to share with). */
export function sharingLoss(logits: Tensor): Tensor | null {
  const [T, B] = logits.shape;
  const w = tensor(Float32Array.from({ length: B }, (_, b) => (b + 1) / B), [B, 1], {
    backend: logits.backend,
  });
  let total: Tensor | null = null;
  for (let i = 0; i < T; i++) {
    for (let j = i + 1; j < T; j++) {
      const term = sum(mul(abs(sub(execColumn(logits, i), execColumn(logits, j))), w));
      total = total ? add(total, term) : term;
    }
  }
  return total;
}

/**
 * The extra loss of a logit epoch: sparsityWeight·L_sparse over the curriculum window,
 * plus shareWeight·L_share when there are several tasks.
 */
export function policyRegularisers(
  logits: Tensor,
  window: number,
  weights: { sparsityWeight: number; shareWeight: number },
): Tensor {
  const sparse = mul(sparsityLoss(logits, window), weights.sparsityWeight);
  const share = sharingLoss(logits);
  return share ? add(sparse, mul(share, weights.shareWeight)) : sparse;
}
