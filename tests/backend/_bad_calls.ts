/**
 * Kernel calls with bad sizes that every native backend must refuse with the message of
 * the shared argument checks (native/common/abi.inc), never crash on.
 */
import assert from "node:assert/strict";
import type { Backend } from "../../src/backend/backend.ts";

/** Runs the bad calls on `b`, with scratch buffers it allocates and frees. */
export function assertBadSizesRefused(b: Backend): void {
  const x = b.alloc(16), w = b.alloc(25), y = b.alloc(16);
  const s = { N: 1, C: 1, H: 4, W: 4, K: 1, R: 5, S: 5, G: 1, stride: 1, pad: 0 };
  assert.throws(
    () => b.conv2dForward({ out: y, inp: x, weight: w, bias: null, ...s }),
    /^Error: Cannot run kernel "conv2d_forward": abi\.inc:\d+: conv2d_forward: output size 'P' is 0 < 1/,
  );
  assert.throws(
    () => b.conv2dBackwardData({ dinp: x, dout: y, weight: w, ...s, R: 1, S: 1, stride: 0 }),
    /conv2d_backward_data: size 'stride' must be >= 1, got 0/,
  );
  assert.throws(
    () => b.fillForward({ out: y, value: 0, n: -1 }),
    /fill_forward.*abi\.inc:\d+: .*'n' must be >= 0/,
  );
  const aShape = [1, 2, 2, 4] as const, bShape = [1, 4, 1, 4] as const;
  assert.throws(
    () => b.binaryForward({ out: y, a: x, b: x, aShape, bShape, op: "add" }),
    /binary_forward: dim 1 of a \(2\) and b \(4\) cannot broadcast/,
  );
  for (const st of [x, w, y]) b.free(st);
}
