/** Bad input gives clear errors (asserted by message), never a crash. */
import assert from "node:assert/strict";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { backward } from "../../src/autograd/tape.ts";
import * as ops from "../../src/ops/mod.ts";
import { scope, setDefaultBackend, tensor, zeros } from "../../src/tensor/tensor.ts";

setDefaultBackend(new ReferenceBackend());

Deno.test("conv2d() names the rank it received", () => {
  const x = zeros([3, 8, 8]), w = zeros([4, 3, 3, 3]);
  assert.throws(
    () => ops.conv2d(x, w),
    /Cannot run conv2d: input must be rank 4: current rank is 3 \(shape \[3, 8, 8\]\)/,
  );
});

Deno.test("conv2d() names both channel counts on a mismatch", () => {
  assert.throws(
    () => ops.conv2d(zeros([1, 2, 5, 5]), zeros([4, 3, 3, 3])),
    /weight \[4, 3, 3, 3\] expects 3 input channels, input \[1, 2, 5, 5\] has 2/,
  );
});

Deno.test("conv2d() refuses an input smaller than the kernel", () => {
  assert.throws(
    () => ops.conv2d(zeros([1, 1, 2, 2]), zeros([1, 1, 3, 3])),
    /smaller than kernel 3×3/,
  );
});

Deno.test("conv2d() names the shapes when channels are not multiples of groups", () => {
  assert.throws(
    () => ops.conv2d(zeros([1, 6, 5, 5]), zeros([4, 2, 3, 3]), { groups: 4 }),
    /input \[1, 6, 5, 5\] has 6 channels and weight \[4, 2, 3, 3\] 4 output channels; both must be multiples of groups 4/,
  );
  assert.throws(
    () => ops.conv2d(zeros([1, 6, 5, 5]), zeros([3, 3, 3, 3]), { groups: 3 }),
    /weight \[3, 3, 3, 3\] expects 3·3 = 9 input channels in 3 groups, input \[1, 6, 5, 5\] has 6/,
  );
  assert.throws(
    () => ops.conv2d(zeros([1, 2, 5, 5]), zeros([2, 1, 3, 3]), { groups: 0 }),
    /groups 0/,
  );
});

Deno.test("maxPool2d() in ceil mode and avgPool2d() refuse inputs smaller than the window", () => {
  assert.throws(
    () => ops.maxPool2d(zeros([1, 1, 2, 2]), { kernel: 3, stride: 2, padding: 0, ceilMode: true }),
    /Cannot run maxPool2d: input \[1, 1, 2, 2\] is smaller than window 3/,
  );
  assert.throws(
    () => ops.avgPool2d(zeros([1, 1, 1, 3]), { kernel: 2 }),
    /Cannot run avgPool2d: input \[1, 1, 1, 3\] is smaller than window 2/,
  );
});

Deno.test("add() refuses shapes that do not broadcast", () => {
  assert.throws(
    () => ops.add(zeros([2, 3]), zeros([4])),
    /Cannot run add: shapes \[2, 3\] and \[4\] do not broadcast/,
  );
});

Deno.test("linear() names the feature counts", () => {
  assert.throws(
    () => ops.linear(zeros([2, 5]), zeros([3, 4])),
    /weight \[3, 4\] expects 4 input features, input \[2, 5\] has 5/,
  );
});

Deno.test("batchNorm() checks the parameter shapes", () => {
  assert.throws(
    () =>
      ops.batchNorm(zeros([2, 3, 2, 2]), zeros([4]), zeros([3]), {
        runningMean: zeros([3]),
        runningVar: zeros([3]),
        training: true,
      }),
    /Cannot run batchNorm: weight must have shape \[3\]: current shape is \[4\]/,
  );
});

Deno.test("crossEntropy() refuses a target outside the classes", () => {
  assert.throws(
    () => ops.crossEntropy(zeros([2, 3]), tensor([0, 3])),
    /target of sample 1 is 3, expected an integer in 0\.\.2/,
  );
});

Deno.test("a disposed tensor cannot be used", () => {
  const x = tensor([1, 2], [2], { name: "features" });
  x.dispose();
  assert.throws(() => ops.relu(x), /Cannot use tensor "features" of shape \[2\]: it was disposed/);
  assert.throws(() => x.toArray(), /it was disposed/);
});

Deno.test("tensor() refuses data that does not fit the shape", () => {
  assert.throws(() => tensor([1, 2, 3], [2, 2]), /got 3 values, expected 4/);
});

Deno.test("backward() needs a single-value loss that depends on a parameter", () => {
  const w = tensor([1, 2], [2], { requiresGrad: true });
  assert.throws(() => backward(ops.mul(w, 2)), /expected a single-value loss/);
  assert.throws(() => backward(tensor([1])), /does not depend on any tensor that requires grad/);
});

Deno.test("tensors of two backends do not mix", () => {
  const other = new ReferenceBackend();
  assert.throws(
    () => ops.add(zeros([2]), zeros([2], { backend: other })),
    /Cannot run add: tensors live on different backends/,
  );
});

Deno.test("scope() frees intermediates and keeps what it returns", () => {
  let inner: ReturnType<typeof zeros> | null = null;
  const kept = scope(() => {
    inner = zeros([3]);
    return ops.add(inner, 1);
  });
  assert.equal(inner!.disposed, true);
  assert.equal(kept.disposed, false);
  assert.deepEqual([...kept.toArray()], [1, 1, 1]);
});

Deno.test("scope() frees everything when the function throws", () => {
  let inner: ReturnType<typeof zeros> | null = null;
  assert.throws(() =>
    scope(() => {
      inner = zeros([3]);
      throw new Error("boom");
    }), /boom/);
  assert.equal(inner!.disposed, true);
});

Deno.test("backward() accumulates into leaf gradients and frees intermediates", () => {
  const w = tensor([1, -2, 3], [3], { requiresGrad: true });
  for (let i = 0; i < 2; i++) {
    scope(() => backward(ops.sum(ops.mul(ops.add(w, w), w)))); // d/dw Σ 2w² = 4w
  }
  assert.deepEqual([...w.grad!.toArray()], [8, -16, 24]);
  assert.equal(w.grad!.disposed, false);
});
