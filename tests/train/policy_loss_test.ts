/** The policy regularisers' values against hand computation (gradients: tests/ops). */
import assert from "node:assert/strict";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { setDefaultBackend, tensor } from "../../src/tensor/tensor.ts";
import { sharingLoss, sparsityLoss } from "../../src/train/policy_loss.ts";

setDefaultBackend(new ReferenceBackend({ precision: "f64" }));

Deno.test("sparsityLoss() sums over tasks the mean −log p_skip over the window", () => {
  const logits = new Float32Array(2 * 8 * 2);
  logits[(0 * 8 + 7) * 2 + 1] = 1; // task 0, block 7: skip logit 1
  const got = sparsityLoss(tensor(logits, [2, 8, 2]), 2).item();
  const pSkip = (l: number) => Math.exp(l) / (1 + Math.exp(l));
  // window = blocks 6, 7 of both tasks: three entries at p_skip 0.5, one at σ(1); as
  // AdaShare's code: a mean over the window per task, summed over the two tasks.
  const want = -(Math.log(0.5) + Math.log(pSkip(1))) / 2 - (2 * Math.log(0.5)) / 2;
  assert.ok(Math.abs(got - want) < 1e-6, `${got} vs ${want}`);
});

Deno.test("sharingLoss() weights |exec-logit differences| by (b+1)/B", () => {
  const logits = new Float32Array(2 * 8 * 2);
  logits[(1 * 8 + 0) * 2] = 2; // task 1, block 0 exec +2: weight 1/8
  logits[(1 * 8 + 7) * 2] = -1; // task 1, block 7 exec −1: weight 8/8
  logits[(0 * 8 + 7) * 2 + 1] = 5; // skip logits do not count
  const got = sharingLoss(tensor(logits, [2, 8, 2]))!.item();
  assert.ok(Math.abs(got - (2 / 8 + 1)) < 1e-6, `${got}`);
  assert.equal(sharingLoss(tensor(new Float32Array(16), [1, 8, 2])), null);
});
