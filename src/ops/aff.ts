/**
 * The AFF fusion step as one op with a native forward and backward (fbp.h
 * `aff_fuse_forward` / `aff_fuse_backward`): relu(s·(F + w⊙(S − F))), w = sigmoid(L + G).
 * Composed from elementwise ops it is ~7 kernels forward and ~12 backward, each keeping
 * a full-size intermediate for backward; fused it saves only its inputs.
 * @module
 */
import { empty, type Tensor } from "../tensor/tensor.ts";
import type { NchwSizes } from "../backend/backend.ts";
import { checkRank, checkShape, record, sameBackend } from "./op.ts";

/**
 * AFF fusion followed by the block's ReLU: `relu(scale·(F + w⊙(S − F)))` with
 * `w = sigmoid(L + G)`; `shortcut` S, `residual` F and `local` L are (N, C, H, W), `global`
 * G is (N, C, 1, 1), broadcast over H×W.
 * @throws {RangeError} when the shapes disagree
 * @example Fuse 1×1×1×2 tensors with zero attention logits (w = 0.5)
 * ```ts
 * import { setDefaultBackend, tensor } from "../tensor/tensor.ts";
 * import { ReferenceBackend } from "../backend/reference.ts";
 * import { affFuse } from "./aff.ts";
 * setDefaultBackend(new ReferenceBackend());
 * const s = tensor([1, -4], [1, 1, 1, 2]), f = tensor([3, 2], [1, 1, 1, 2]);
 * const l = tensor([0, 0], [1, 1, 1, 2]), g = tensor([0], [1, 1, 1, 1]);
 * const out = affFuse(s, f, l, g, 2).toArray();
 * if (out[0] !== 4 || out[1] !== 0) throw new Error(`unexpected ${out}`);
 * ```
 */
export function affFuse(
  shortcut: Tensor,
  residual: Tensor,
  local: Tensor,
  global: Tensor,
  scale: number,
): Tensor {
  const op = "affFuse";
  const be = sameBackend(op, shortcut, residual, local, global);
  checkRank(op, "shortcut", shortcut, 4);
  const [N, C, H, W] = shortcut.shape;
  checkShape(op, "residual", residual, shortcut.shape);
  checkShape(op, "local attention", local, shortcut.shape);
  checkShape(op, "global attention", global, [N, C, 1, 1]);
  if (!Number.isFinite(scale)) {
    throw new RangeError(`Cannot run affFuse: scale must be finite: current value is ${scale}`);
  }
  const s: NchwSizes = { N, C, H, W };
  const out = empty(shortcut.shape, { backend: be });
  const S = shortcut.storage, F = residual.storage, L = local.storage, G = global.storage;
  be.affFuseForward({ out: out.storage, S, F, L, G, scale, ...s });
  return record(out, op, [shortcut, residual, local, global], (g) => {
    const dS = empty(shortcut.shape, { backend: be }), dF = empty(shortcut.shape, { backend: be });
    const dL = empty(shortcut.shape, { backend: be }), dG = empty(global.shape, { backend: be });
    be.affFuseBackward({
      dS: dS.storage,
      dF: dF.storage,
      dL: dL.storage,
      dG: dG.storage,
      dout: g.storage,
      S,
      F,
      L,
      G,
      scale,
      ...s,
    });
    return [dS, dF, dL, dG];
  }, [shortcut, residual, local, global]);
}
