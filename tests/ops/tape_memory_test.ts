/**
 * backward() frees as it goes: a rule's temporaries and the gradient contributions it has
 * summed are not kept until the step's scope ends, so a step's backward peak is lower.
 */
import assert from "node:assert/strict";
import { liveCounting } from "../counting_backend.ts";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { backward } from "../../src/autograd/tape.ts";
import * as ops from "../../src/ops/mod.ts";
import { scope, tensor } from "../../src/tensor/tensor.ts";

Deno.test("backward() leaves only the leaf gradients alive", () => {
  const { backend, live } = liveCounting(new ReferenceBackend());
  const w = tensor([1, -2, 3, 0.5], [2, 2], { backend, requiresGrad: true });
  const c = tensor([2], [1], { backend }), d = tensor([0.5, -1], [2, 1], { backend });
  scope(() => {
    // w reaches the loss three ways (contributions are summed), and the broadcasting
    // muls' rules make temporaries (g·c before the sumTo to c's shape).
    const y = ops.add(ops.add(ops.mul(w, c), ops.mul(w, d)), ops.relu(w));
    const loss = ops.sum(ops.mul(y, y));
    const before = live();
    backward(loss);
    assert.equal(live() - before, 1, "only w.grad is new after backward");
  });
  // d/dw Σ y² = 2y·(c + d + [w > 0]), y = w·c + w·d + relu(w)
  const wv = [1, -2, 3, 0.5], dv = [0.5, 0.5, -1, -1];
  const want = wv.map((x, i) => {
    const y = 2 * x + dv[i] * x + Math.max(x, 0);
    return 2 * y * (2 + dv[i] + (x > 0 ? 1 : 0));
  });
  assert.deepEqual([...w.grad!.toArray()], want);
});
