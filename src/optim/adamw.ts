/**
 * AdamW (Loshchilov & Hutter, arXiv:1711.05101): Adam with weight decay applied to the
 * weights directly rather than through the gradient, PyTorch's semantics and defaults.
 * One native call per parameter updates the weight and both moments in place.
 * @module
 */
import { keep, type Tensor, zeros } from "../tensor/tensor.ts";
import type { AdamWHyper } from "../backend/backend.ts";

/** AdamW options (PyTorch defaults except lr, which the paper sets to 1e-3). */
export interface AdamWOptions {
  /** Step size (default 1e-3). */
  lr?: number;
  /** First-moment decay (default 0.9). */
  beta1?: number;
  /** Second-moment decay (default 0.999). */
  beta2?: number;
  /** Denominator term (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 0.01). */
  weightDecay?: number;
}

/** AdamW over a fixed list of parameters. */
export class AdamW {
  /** Hyper-parameters; `lr` may be changed between steps by a schedule. */
  readonly hyper: AdamWHyper;
  /** Steps taken so far (the bias correction uses it). */
  stepCount = 0;
  readonly #params: readonly Tensor[];
  readonly #m: Tensor[];
  readonly #v: Tensor[];

  /**
   * Creates the optimiser with zeroed moments for each parameter.
   * @param params leaf tensors that require grad
   * @throws {Error} when a parameter does not require grad
   */
  constructor(params: readonly Tensor[], opts: AdamWOptions = {}) {
    for (const p of params) {
      if (!p.requiresGrad) {
        throw new Error(`Cannot optimise tensor ${p.describe()}: it does not require grad`);
      }
    }
    this.#params = params;
    this.hyper = {
      lr: opts.lr ?? 1e-3,
      beta1: opts.beta1 ?? 0.9,
      beta2: opts.beta2 ?? 0.999,
      eps: opts.eps ?? 1e-8,
      weightDecay: opts.weightDecay ?? 0.01,
    };
    // keep(): optimiser state outlives any scope the optimiser is created in.
    this.#m = params.map((p) => keep(zeros(p.shape, { backend: p.backend })));
    this.#v = params.map((p) => keep(zeros(p.shape, { backend: p.backend })));
  }

  /** The parameters, in the order of the moments. */
  get params(): readonly Tensor[] {
    return this.#params;
  }

  /** The optimiser state, in parameter order: first and second moments. */
  get moments(): { m: readonly Tensor[]; v: readonly Tensor[] } {
    return { m: this.#m, v: this.#v };
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    this.stepCount++;
    for (let i = 0; i < this.#params.length; i++) {
      const p = this.#params[i];
      if (!p.grad) continue;
      const { lr, beta1, beta2, eps, weightDecay } = this.hyper;
      p.backend.adamwUpdate({
        param: p.storage,
        m: this.#m[i].storage,
        v: this.#v[i].storage,
        grad: p.grad.storage,
        n: p.size,
        lr,
        beta1,
        beta2,
        eps,
        weight_decay: weightDecay,
        step: this.stepCount,
      });
    }
  }

  /** Frees every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.#params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees the optimiser state. */
  dispose(): void {
    for (const t of [...this.#m, ...this.#v]) t.dispose();
  }
}
