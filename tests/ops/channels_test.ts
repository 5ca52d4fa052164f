/**
 * The channel ops beyond their gradients (finite differences in cases.ts, PyTorch values
 * in torch_fixtures_test.ts): stochastic depth's modes, keep rate, scale and backend-
 * independent mask, the values of concat/split/shuffle on known inputs, and the errors.
 */
import assert from "node:assert/strict";
import { backward } from "../../src/autograd/tape.ts";
import { hashUniform } from "../../src/backend/reference.ts";
import * as ops from "../../src/ops/mod.ts";
import { scope, tensor, zeros } from "../../src/tensor/tensor.ts";
import { testBackends } from "../backends.ts";
import { rng } from "./harness.ts";

const backends = await testBackends(); // the reference backend is the default after this

/** Values 0, 1, 2, … of a shape. */
function iota(shape: number[]) {
  const n = shape.reduce((a, s) => a * s, 1);
  return tensor(Float32Array.from({ length: n }, (_, i) => i), shape);
}

Deno.test("stochasticDepth is the identity in eval mode and for p = 0, zeros for p = 1", () => {
  scope(() => {
    const x = iota([4, 2, 3, 1]);
    assert.equal(ops.stochasticDepth(x, 0.5, false, 1), x);
    assert.equal(ops.stochasticDepth(x, 0, true, 1), x);
    const dropped = ops.stochasticDepth(x, 1, true, 1);
    assert.deepEqual([...dropped.shape], [...x.shape]);
    assert.ok(dropped.toArray().every((v) => v === 0));
  });
});

Deno.test("the finite-difference case of stochasticDepth both keeps and drops samples", () => {
  // tests/ops/cases.ts: p = 0.4, seed 7, 6 samples; a mask of one kind would test less.
  const keep = Array.from({ length: 6 }, (_, n) => hashUniform(7, n) >= Math.fround(0.4));
  assert.ok(keep.includes(true) && keep.includes(false), `mask ${keep}`);
});

for (const { name, backend } of backends) {
  Deno.test(`stochasticDepth keeps about 1 − p of the samples, scaled by 1/(1 − p), on ${name}`, () => {
    scope(() => {
      const N = 4000, F = 3, p = 0.3, seed = 99;
      const r = rng(5);
      const data = Float32Array.from({ length: N * F }, () => r() + 0.5); // never 0
      const x = tensor(data, [N, F], { backend, requiresGrad: true });
      const y = ops.stochasticDepth(x, p, true, seed);
      const out = y.toArray();
      const scale = Math.fround(1 / (1 - p));
      let kept = 0;
      for (let n = 0; n < N; n++) {
        const row = out.subarray(n * F, (n + 1) * F);
        // The same hash as dropout: sample n is kept when hashUniform(seed, n) >= p.
        const keep = hashUniform(seed, n) >= Math.fround(p);
        if (keep) kept++;
        for (let f = 0; f < F; f++) {
          const want = keep ? data[n * F + f] * scale : 0;
          assert.ok(
            Math.abs(row[f] - want) <= 1e-6 * Math.abs(want),
            `sample ${n} value ${f}: ${row[f]}, expected ${want}`,
          );
        }
      }
      // Binomial(N, 1 − p): standard deviation ≈ 29 samples; allow 5 of them.
      assert.ok(Math.abs(kept - N * (1 - p)) < 5 * Math.sqrt(N * p * (1 - p)), `kept ${kept}`);
      // The gradient is the mask: 1/(1 − p) on kept samples, 0 on dropped ones.
      backward(ops.sum(y));
      const g = x.grad!.toArray();
      for (let n = 0; n < N; n++) {
        const want = hashUniform(seed, n) >= Math.fround(p) ? scale : 0;
        assert.ok(Math.abs(g[n * F] - want) <= 1e-6, `gradient of sample ${n}: ${g[n * F]}`);
      }
      x.grad!.dispose();
    });
  });

  Deno.test(`concat, split and shuffle of channels move the right values on ${name}`, () => {
    scope(() => {
      // x (1, 6, 1, 2): channel c holds 10c and 10c + 1.
      const x = tensor([0, 1, 10, 11, 20, 21, 30, 31, 40, 41, 50, 51], [1, 6, 1, 2], { backend });
      const channels = (t: { toArray(): Float32Array }) =>
        [...t.toArray()].filter((_, i) => i % 2 === 0).map((v) => v / 10);
      // torchvision: view (1, 3, 2) → transpose → (1, 2, 3): output j·3 + i = input i·2 + j.
      assert.deepEqual(channels(ops.channelShuffle(x, 3)), [0, 2, 4, 1, 3, 5]);
      assert.deepEqual(channels(ops.channelShuffle(x, 2)), [0, 3, 1, 4, 2, 5]);
      const [a, b, c] = ops.splitChannels(x, [1, 0, 5]);
      assert.deepEqual([a.shape, b.shape, c.shape].map((s) => s[1]), [1, 0, 5]);
      assert.deepEqual(channels(c), [1, 2, 3, 4, 5]);
      const joined = ops.concatChannels([c, b, a]);
      assert.deepEqual([...joined.shape], [1, 6, 1, 2]);
      assert.deepEqual(channels(joined), [1, 2, 3, 4, 5, 0]);
      assert.deepEqual([...joined.toArray()].slice(10), [0, 1]);
    });
  });
}

Deno.test("layerNormChannels normalises each position over its channels", () => {
  scope(() => {
    // Position 0 has channel values 1, 2, 3 (mean 2, biased var 2/3), position 1 has
    // 0, 0, 3 (mean 1, biased var 2).
    const x = tensor([1, 0, 2, 0, 3, 3], [1, 3, 1, 2]);
    const w = tensor([1, 2, 1], [3]), b = tensor([0, 0, 1], [3]);
    const y = ops.layerNormChannels(x, w, b, 0).toArray();
    const s = Math.sqrt(2 / 3), r = Math.SQRT2;
    const want = [-1 / s, -1 / r, 0, -2 / r, 1 / s + 1, r + 1];
    want.forEach((v, i) => assert.ok(Math.abs(y[i] - v) < 1e-6, `${i}: ${y[i]} vs ${v}`));
  });
});

Deno.test("channel ops name the op and the shapes in their errors", () => {
  scope(() => {
    const x = zeros([2, 4, 3, 3]);
    assert.throws(() => ops.concatChannels([]), /Cannot run concatChannels: no tensors given/);
    assert.throws(
      () => ops.concatChannels([x, zeros([2, 1, 3, 2])]),
      /Cannot run concatChannels: input 1 of shape \[2, 1, 3, 2\] differs from input 0 \[2, 4, 3, 3\] outside the channels/,
    );
    assert.throws(
      () => ops.concatChannels([x, zeros([2, 4, 9])]),
      /Cannot run concatChannels: input 1 must be rank 4: current rank is 3/,
    );
    assert.throws(
      () => ops.splitChannels(x, [1, 2]),
      /Cannot run splitChannels: sizes \[1, 2\] must be non-negative integers summing to the 4 channels of input \[2, 4, 3, 3\]/,
    );
    assert.throws(
      () => ops.splitChannels(x, [5, -1]),
      /Cannot run splitChannels: sizes \[5, -1\]/,
    );
    assert.throws(
      () => ops.channelShuffle(x, 3),
      /Cannot run channelShuffle: groups must be a positive integer dividing the 4 channels of input \[2, 4, 3, 3\]: current value is 3/,
    );
    assert.throws(
      () => ops.layerNormChannels(x, zeros([3]), zeros([4]), 1e-6),
      /Cannot run layerNormChannels: weight must have shape \[4\]: current shape is \[3\]/,
    );
    assert.throws(
      () => ops.layerNormChannels(x, zeros([4]), zeros([4]), -1),
      /Cannot run layerNormChannels: eps must be finite and >= 0: current value is -1/,
    );
    assert.throws(
      () => ops.stochasticDepth(x, 1.5, true, 0),
      /Cannot run stochasticDepth: probability must be in \[0, 1\]: current value is 1.5/,
    );
    assert.throws(
      () => ops.stochasticDepth(zeros([1, 1, 1, 1, 2]), 0.5, true, 0),
      /Cannot run stochasticDepth: input must have rank 1 to 4: current shape is \[1, 1, 1, 1, 2\]/,
    );
  });
});
