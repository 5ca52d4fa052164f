/**
 * graphScope(): intermediates that no backward rule reads are freed when the scope exits,
 * saved ones when the tape has run the rules that read them, and gradients are unchanged.
 */
import assert from "node:assert/strict";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { backward } from "../../src/autograd/tape.ts";
import { noGrad } from "../../src/tensor/grad_mode.ts";
import * as ops from "../../src/ops/mod.ts";
import {
  graphScope,
  scope,
  setDefaultBackend,
  type Tensor,
  tensor,
} from "../../src/tensor/tensor.ts";

setDefaultBackend(new ReferenceBackend());

/** y = relu(w·a) + w·b inside a graphScope; the intermediates are handed out for checks. */
function forward(w: Tensor, a: Tensor, b: Tensor) {
  let product!: Tensor, rectified!: Tensor, other!: Tensor;
  const y = graphScope(() => {
    product = ops.mul(w, a); // read by no rule: relu's backward reads its output
    rectified = ops.relu(product); // read by relu's backward
    other = ops.mul(w, b); // read by no rule: add's backward needs shapes only
    return ops.add(rectified, other);
  });
  return { y, product, rectified, other };
}

Deno.test("graphScope() frees what no backward rule reads, and saved tensors after backward", () => {
  const w = tensor([1, -2, 3], [3], { requiresGrad: true });
  const a = tensor([2, 2, -1], [3]), b = tensor([0.5, 0.5, 0.5], [3]);
  scope(() => {
    const { y, product, rectified, other } = forward(w, a, b);
    assert.equal(product.disposed, true);
    assert.equal(other.disposed, true);
    assert.equal(rectified.disposed, false, "relu's output is read by its backward");
    assert.equal(y.disposed, false);
    backward(ops.sum(y));
    assert.equal(rectified.disposed, true, "freed once relu's backward has run");
  });
  // d/dw = a·[w·a > 0] + b = [2.5, 0.5, 0.5]
  assert.deepEqual([...w.grad!.toArray()], [2.5, 0.5, 0.5]);
});

Deno.test("graphScope() gives the same gradients as no inner scope", () => {
  const grads = (scoped: <T>(fn: () => T) => T) => {
    const w = tensor([0.3, -1.2, 2, 0.7], [2, 2], { requiresGrad: true });
    scope(() => {
      const u = scoped(() => ops.sigmoid(ops.mul(ops.relu(ops.add(w, 0.5)), w)));
      backward(ops.sum(ops.mul(u, u)));
    });
    return [...w.grad!.toArray()];
  };
  assert.deepEqual(grads(graphScope), grads((fn) => fn()));
});

Deno.test("graphScope() tensors saved for a backward that never runs go with the outer scope", () => {
  const w = tensor([1, 2], [2], { requiresGrad: true });
  let rectified: Tensor | null = null;
  scope(() => {
    graphScope(() => {
      rectified = ops.relu(w);
      return ops.add(rectified, 1);
    });
    assert.equal(rectified!.disposed, false);
  });
  assert.equal(rectified!.disposed, true);
});

Deno.test("graphScope() outside any scope keeps saved tensors for a later backward", () => {
  const w = tensor([1, -2, 3], [3], { requiresGrad: true });
  let rectified!: Tensor;
  const y = graphScope(() => {
    rectified = ops.relu(w);
    return ops.mul(rectified, 2);
  });
  assert.equal(rectified.disposed, false);
  const loss = ops.sum(y);
  backward(loss);
  assert.equal(rectified.disposed, true, "freed once relu's backward has run");
  assert.deepEqual([...w.grad!.toArray()], [2, 0, 2]);
  for (const t of [y, loss, w.grad!]) t.dispose();
});

Deno.test("graphScope() under noGrad frees every intermediate at once", () => {
  const w = tensor([1, -2], [2]);
  let rectified: Tensor | null = null;
  const out = scope(() =>
    noGrad(() =>
      graphScope(() => {
        rectified = ops.relu(w);
        return ops.add(rectified, 1);
      })
    )
  );
  assert.equal(rectified!.disposed, true);
  assert.deepEqual([...out.toArray()], [2, 1]);
});

Deno.test("graphScope() frees the outputs of log and abs, whose backward reads the input", () => {
  const w = tensor([0.5, -2, 4], [3], { requiresGrad: true });
  scope(() => {
    let logged!: Tensor, absolute!: Tensor;
    const y = graphScope(() => {
      absolute = ops.abs(w);
      logged = ops.log(absolute);
      return ops.mul(logged, 3);
    });
    assert.equal(logged.disposed, true);
    assert.equal(absolute.disposed, false, "log's backward reads its input");
    backward(ops.sum(y));
  });
  // d/dw 3·ln|w| = 3/w
  assert.deepEqual([...w.grad!.toArray()], [6, -1.5, 0.75]);
});
