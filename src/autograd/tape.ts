/**
 * Reverse-mode autograd over the graph that ops record on their outputs (micrograd's
 * design, with tensors): `backward(loss)` orders the graph topologically and runs each
 * node's backward rule in reverse, summing gradients that meet at a tensor.
 *
 * Intermediate gradients are freed as soon as every consumer has used them (a gradient
 * may be shared: `add` hands its output gradient to both inputs unchanged), so backward
 * peaks near the size of the activations, not twice that.
 * @module
 */
import { keep, ones, scope, type Tensor } from "../tensor/tensor.ts";
import { add } from "../ops/elementwise.ts";
import { isGradEnabled, noGrad } from "../tensor/grad_mode.ts";

export { isGradEnabled, noGrad };

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: ResNet graphs are deep enough to make recursion a risk.
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const child = inputs[i];
      if (child.requiresGrad && !seen.has(child)) {
        seen.add(child);
        stack.push([child, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

/** Refuses a loss that is not one value or reaches nothing that requires grad. */
function checkLoss(loss: Tensor): void {
  if (loss.size !== 1) {
    throw new RangeError(
      `Cannot run backward from tensor ${loss.describe()}: expected a single-value loss`,
    );
  }
  if (!loss.requiresGrad) {
    throw new Error(
      `Cannot run backward from tensor ${loss.describe()}: it does not depend on any tensor that requires grad`,
    );
  }
}

/**
 * Computes gradients of `loss` (a one-element tensor) with respect to every leaf tensor
 * that requires grad, adding into each leaf's `.grad` (which outlives scopes).
 * @throws {RangeError} when `loss` is not a one-element tensor
 * @throws {Error} when `loss` does not depend on any tensor that requires grad
 */
export function backward(loss: Tensor): void {
  checkLoss(loss);
  const order = topoOrder(loss);
  backwardPass(loss, order, { release: true });
}

/**
 * The gradient of `loss` with respect to one tensor `at`, returned (never added to its
 * `.grad`; nothing else gets one). Only the rules between `at` and the loss run, and only
 * for the inputs that lead back to `at`, and the graph is kept: a `backward` of the same
 * graph may follow. GradNorm reads a per-task gradient at a deep shared layer this way
 * (src/train/task_weights.ts): the part above the layer is a small share of a backward.
 * @param loss a one-element tensor
 * @param at a tensor the loss may depend on (a parameter, usually)
 * @returns the gradient (the caller disposes it), or null when the loss does not depend on
 *   it or no gradient reaches it (every path to it runs through an op without one)
 * @throws {RangeError} when `loss` is not a one-element tensor
 * @throws {Error} when `loss` does not depend on any tensor that requires grad
 * @example The gradient of Σ w² at w, then the whole backward of the same graph
 * ```ts
 * import assert from "node:assert/strict";
 * import { backward, gradientAt } from "./tape.ts";
 * import { mul, sum } from "../ops/elementwise.ts";
 * import { ReferenceBackend } from "../backend/reference.ts";
 * import { setDefaultBackend, tensor } from "../tensor/tensor.ts";
 * setDefaultBackend(new ReferenceBackend());
 * const w = tensor([1, 2], [2], { requiresGrad: true });
 * const loss = sum(mul(w, w));
 * assert.deepEqual([...gradientAt(loss, w)!.toArray()], [2, 4]); // 2w
 * assert.equal(w.grad, null);
 * backward(loss);
 * assert.deepEqual([...w.grad!.toArray()], [2, 4]);
 * ```
 */
export function gradientAt(loss: Tensor, at: Tensor): Tensor | null {
  checkLoss(loss);
  const order = topoOrder(loss);
  // The tensors that depend on `at` (order lists inputs before the tensors made from them).
  const leads = new Set<Tensor>([at]);
  for (const t of order) {
    if (t.node?.inputs.some((x) => leads.has(x))) leads.add(t);
  }
  if (!leads.has(loss)) return null;
  return backwardPass(loss, order.filter((t) => leads.has(t)), { release: false, at, leads });
}

/**
 * One backward pass over `order` (topological, loss last). `release`: free each rule's
 * saved tensors once it ran, and add the leaves' gradients into their `.grad`; otherwise
 * keep the graph and return the gradient of `at`, following only the inputs in `leads`.
 */
function backwardPass(
  loss: Tensor,
  order: Tensor[],
  o: { release: boolean; at?: Tensor; leads?: ReadonlySet<Tensor> },
): Tensor | null {
  const grads = new Map<Tensor, Tensor>();
  const refs = new Map<Tensor, number>();
  const hold = (g: Tensor) => refs.set(g, (refs.get(g) ?? 0) + 1);
  const release = (g: Tensor) => {
    const n = (refs.get(g) ?? 0) - 1;
    if (n > 0) refs.set(g, n);
    else {
      refs.delete(g);
      g.dispose();
    }
  };
  const accumulate = (t: Tensor, g: Tensor) => {
    const prev = grads.get(t);
    if (prev === undefined) {
      grads.set(t, g);
      hold(g);
      return;
    }
    const sum = noGrad(() => add(prev, g));
    release(prev);
    grads.set(t, sum);
    hold(sum);
  };

  accumulate(loss, ones(loss.shape, { backend: loss.backend }));
  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = grads.get(t);
    if (!g) continue;
    if (!t.node || t === o.at) continue; // a leaf (handled below), or where to stop
    const inputs = t.node.inputs;
    const needs = inputs.map((x) => x.requiresGrad && (!o.leads || o.leads.has(x)));
    // In a scope: a rule's temporaries (e.g. g·b before its sumTo) are freed at once.
    const inputGrads = scope(() => noGrad(() => t.node!.backward(g, needs)));
    if (o.release) { for (const s of t.node.saved) s.releaseForBackward(); }
    for (let j = 0; j < inputs.length; j++) {
      const gj = inputGrads[j];
      if (!gj) continue;
      if (!needs[j]) continue; // freed with the dead contributions below
      checkGradShape(t.node.op, inputs[j], gj);
      accumulate(inputs[j], gj);
    }
    // Contributions summed into an earlier gradient, or not needed, are dead now (a rule
    // returns new tensors or its gradOut, which its slot holds until released below).
    for (const gj of new Set(inputGrads)) {
      if (gj && gj !== g && !refs.has(gj)) gj.dispose();
    }
    grads.delete(t);
    release(g);
  }
  if (!o.release) {
    // Only `at` is left (the loss depends on it); a copy if its gradient is shared. No
    // gradient reached it when every path's rule returned none (a non-differentiable op).
    const g = o.at ? grads.get(o.at) : undefined;
    if (!g) return null;
    const own = (refs.get(g) ?? 0) > 1 ? noGrad(() => add(g, 0)) : g;
    if (own !== g) release(g);
    return own;
  }
  for (const [leaf, g] of grads) {
    // A gradient still shared with another leaf is copied so each leaf owns its own.
    const own = (refs.get(g) ?? 0) > 1 || leaf.grad !== null
      ? noGrad(() => leaf.grad ? add(leaf.grad, g) : add(g, 0))
      : g;
    if (own !== g) release(g);
    if (leaf.grad && leaf.grad !== own) leaf.grad.dispose();
    leaf.grad = keep(own);
  }
  return null;
}

function checkGradShape(op: string, input: Tensor, g: Tensor): void {
  if (g.size !== input.size) {
    throw new Error(
      `Cannot run backward of op "${op}": gradient has ${g.size} values for an input ${input.describe()}`,
    );
  }
}
