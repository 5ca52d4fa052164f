/**
 * Module: a named tree of parameters (trained) and buffers (running statistics), the
 * source of the dotted state-dict keys (`layer1.0.bn1.scut.weight`) that checkpoints and
 * torchvision imports share.
 * @module
 */
import { keep, type Tensor } from "../tensor/tensor.ts";

/** Base class of layers: registers children, parameters and buffers by local name. */
export class Module {
  readonly #params = new Map<string, Tensor>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  /** Registers a trainable parameter (requires grad, outlives scopes) and returns it. */
  protected param(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this.#params.set(name, keep(t));
    return t;
  }

  /** Registers a buffer (saved, not trained) and returns it. */
  protected buffer(name: string, t: Tensor): Tensor {
    this.#buffers.set(name, keep(t));
    return t;
  }

  /** Registers a child module and returns it. */
  protected child<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  /**
   * Registers `m`'s parameters, buffers and children under this module's own names (no
   * segment of its own): a wrapper that keeps torchvision's keys, e.g. a Sequential step
   * holding a Conv2d whose keys are `<index>.weight`. Returns `m`.
   */
  protected adopt<M extends Module>(m: M): M {
    this.#children.set("", m);
    return m;
  }

  /** Trainable parameters with their dotted names, in registration order. */
  namedParameters(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, t] of this.#params) out.push([prefix + k, t]);
    for (const [k, m] of this.#children) {
      out.push(...m.namedParameters(k ? `${prefix}${k}.` : prefix));
    }
    return out;
  }

  /** Buffers with their dotted names. */
  namedBuffers(prefix = ""): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [k, t] of this.#buffers) out.push([prefix + k, t]);
    for (const [k, m] of this.#children) out.push(...m.namedBuffers(k ? `${prefix}${k}.` : prefix));
    return out;
  }

  /** Every module of the tree with its dotted name ("" for this one), parents first. */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ""), this]];
    for (const [k, m] of this.#children) out.push(...m.namedModules(k ? `${prefix}${k}.` : prefix));
    return out;
  }

  /** Every saved tensor (parameters and buffers) by dotted name. */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [k, t] of this.namedParameters()) out.set(k, t);
    for (const [k, t] of this.namedBuffers()) out.set(k, t);
    for (const [k, t] of out) t.name ??= k;
    return out;
  }

  /** Trainable parameters. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Frees every parameter, gradient and buffer. */
  dispose(): void {
    for (const t of this.stateDict().values()) {
      t.grad?.dispose();
      t.dispose();
    }
  }
}

/** A container of child modules named "0", "1", … (torchvision's nn.Sequential keys). */
export class ModuleList extends Module {
  /** Registers `m` under `name` and returns it. */
  add<M extends Module>(name: string, m: M): M {
    return this.child(name, m);
  }
}
