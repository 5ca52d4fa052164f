/**
 * Tensor: a float32 array of a given shape living in one backend's memory, plus the
 * autograd fields the tape needs. Tensors own their storage; `dispose()` frees it at
 * once, and `scope()` frees every tensor created inside a function except what it
 * returns — a training step runs in a scope so its intermediates never pile up.
 * `graphScope()` frees earlier, as PyTorch does: what no recorded backward rule saved is
 * freed when the scope exits, and what one saved is freed once the tape has run it.
 * A FinalizationRegistry is only a safety net for tensors nobody disposed.
 * @module
 */
import type { Backend, Storage } from "../backend/backend.ts";

/** A reverse-mode autograd node: how to turn the output's gradient into inputs' ones. */
export interface GradNode {
  /** Op name, for error messages. */
  readonly op: string;
  /** The op's tensor inputs, in order. */
  readonly inputs: readonly Tensor[];
  /**
   * Gradients for each input given the output's gradient; `null` where `needs[i]` is
   * false. May return `gradOut` itself (the tape tracks sharing); any other tensor it
   * returns must be new, as the tape frees it once it is summed into a gradient. Tensors
   * the rule creates and does not return are freed when it returns.
   */
  backward(gradOut: Tensor, needs: readonly boolean[]): (Tensor | null)[];
  /**
   * The tensors whose values `backward` reads (inputs, the output, op-internal ones).
   * Tensors of the graph that are not listed here are only traversed by the tape (their
   * node and shape), so a `graphScope` may free their memory during the forward pass.
   */
  readonly saved: readonly Tensor[];
}

let defaultBackend: Backend | null = null;
let nextId = 1;

/** Sets the backend that new tensors use when none is given. */
export function setDefaultBackend(backend: Backend): void {
  defaultBackend = backend;
}

/**
 * Returns the backend that new tensors use when none is given.
 * @throws {Error} when no backend was set.
 */
export function getDefaultBackend(): Backend {
  if (!defaultBackend) {
    throw new Error(
      'Cannot create a tensor: no backend is active. Hint: call setDefaultBackend(await loadBackend("cpu"))',
    );
  }
  return defaultBackend;
}

// Scope bookkeeping: the innermost open scope collects every tensor created in it.
const scopes: Set<Tensor>[] = [];
// Tensors a graphScope let go: they live on only until the backward rules that read them
// have run (module state, so that letting go is not part of Tensor's public surface).
const orphans = new WeakSet<Tensor>();

const finalizer = new FinalizationRegistry<{ backend: Backend; storage: Storage }>(
  (held) => held.backend.free(held.storage),
);

/** Formats a shape as `[2, 3]` for messages. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Number of elements of a shape (1 for a scalar shape `[]`). */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const s of shape) n *= s;
  return n;
}

/** Options for creating a tensor. */
export interface TensorOptions {
  /** Backend that owns the memory (default: the active backend). */
  backend?: Backend;
  /** Whether gradients flow to this tensor (a leaf parameter). */
  requiresGrad?: boolean;
  /** Name shown in error messages (e.g. the parameter key). */
  name?: string;
}

/** A float32 tensor in backend memory. */
export class Tensor {
  /** Dimensions, outermost first. */
  readonly shape: readonly number[];
  /** Element count. */
  readonly size: number;
  /** Owning backend. */
  readonly backend: Backend;
  /** Unique id (stable ordering for the tape). */
  readonly id: number;
  /** Whether gradients are computed for this tensor. */
  requiresGrad: boolean;
  /** Accumulated gradient of a leaf after `backward()`. */
  grad: Tensor | null = null;
  /** The op that produced this tensor (null for leaves and constants). */
  node: GradNode | null = null;
  /** Name for messages. */
  name: string | undefined;
  #storage: Storage | null;
  /** How many recorded backward rules not yet run list this tensor in `saved`. */
  #savedBy = 0;

  /** Wraps an existing storage (use the creation functions instead). */
  constructor(storage: Storage, shape: readonly number[], backend: Backend, opts?: TensorOptions) {
    for (const s of shape) {
      if (!Number.isInteger(s) || s < 0) {
        throw new RangeError(`Cannot create tensor: invalid shape ${formatShape(shape)}`);
      }
    }
    this.shape = Object.freeze([...shape]);
    this.size = shapeSize(shape);
    if (storage.size !== this.size) {
      throw new RangeError(
        `Cannot create tensor of shape ${
          formatShape(shape)
        }: storage holds ${storage.size} values, expected ${this.size}`,
      );
    }
    this.backend = backend;
    this.#storage = storage;
    this.requiresGrad = opts?.requiresGrad ?? false;
    this.name = opts?.name;
    this.id = nextId++;
    finalizer.register(this, { backend, storage }, this);
    scopes.at(-1)?.add(this);
  }

  /** Rank (number of dimensions). */
  get rank(): number {
    return this.shape.length;
  }

  /** Whether `dispose()` was called. */
  get disposed(): boolean {
    return this.#storage === null;
  }

  /**
   * The backend storage.
   * @throws {Error} when the tensor was disposed.
   */
  get storage(): Storage {
    if (this.#storage === null) {
      throw new Error(`Cannot use tensor ${this.describe()}: it was disposed`);
    }
    return this.#storage;
  }

  /** A short description: name (if any) and shape. */
  describe(): string {
    return `${this.name ? `"${this.name}" ` : ""}of shape ${formatShape(this.shape)}`;
  }

  /** Frees the memory now; idempotent. */
  dispose(): void {
    if (this.#storage === null) return;
    finalizer.unregister(this);
    this.backend.free(this.#storage);
    this.#storage = null;
    for (const s of scopes) s.delete(this);
  }

  /** Marks this tensor as read by a recorded backward rule (called by `record`). */
  retainForBackward(): void {
    this.#savedBy++;
  }

  /**
   * Called by the tape once a rule that saved this tensor has run: frees the memory when
   * no other pending rule needs it and a `graphScope` has already let it go.
   */
  releaseForBackward(): void {
    if (this.#savedBy > 0) this.#savedBy--;
    if (this.#savedBy === 0 && orphans.has(this)) this.dispose();
  }

  /** Whether a recorded backward rule that has not run yet reads this tensor. */
  get savedForBackward(): boolean {
    return this.#savedBy > 0;
  }

  /** Copies the values to a new host array. */
  toArray(): Float32Array {
    return this.backend.copyOut(this.storage);
  }

  /**
   * The single value of a one-element tensor.
   * @throws {RangeError} when the tensor holds more than one value.
   */
  item(): number {
    if (this.size !== 1) {
      throw new RangeError(
        `Cannot read item of tensor ${this.describe()}: it holds ${this.size} values`,
      );
    }
    return this.toArray()[0];
  }
}

/**
 * Creates a tensor from host values.
 * @param data the values, row-major
 * @param shape the dimensions; the default is `[data.length]`
 * @throws {RangeError} when the data length does not match the shape
 * @example Create a 2×2 tensor
 * ```ts
 * import { tensor, setDefaultBackend } from "./tensor.ts";
 * import { ReferenceBackend } from "../backend/reference.ts";
 * setDefaultBackend(new ReferenceBackend());
 * const t = tensor([1, 2, 3, 4], [2, 2]);
 * if (t.toArray()[3] !== 4) throw new Error("unexpected value");
 * ```
 */
export function tensor(
  data: ArrayLike<number>,
  shape: readonly number[] = [data.length],
  opts: TensorOptions = {},
): Tensor {
  const n = shapeSize(shape);
  if (data.length !== n) {
    throw new RangeError(
      `Cannot create tensor of shape ${
        formatShape(shape)
      }: got ${data.length} values, expected ${n}`,
    );
  }
  const backend = opts.backend ?? getDefaultBackend();
  const storage = backend.alloc(n);
  backend.copyIn(storage, data instanceof Float32Array ? data : Float32Array.from(data));
  return new Tensor(storage, shape, backend, opts);
}

/** Creates a tensor with uninitialised contents (for kernel outputs). */
export function empty(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  const backend = opts.backend ?? getDefaultBackend();
  return new Tensor(backend.alloc(shapeSize(shape)), shape, backend, opts);
}

/** Creates a tensor filled with `value`. */
export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  const t = empty(shape, opts);
  t.backend.fillForward({ out: t.storage, value, n: t.size });
  return t;
}

/** Creates a tensor of zeros. */
export function zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 0, opts);
}

/** Creates a tensor of ones. */
export function ones(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}

/** Removes a tensor from every open scope so that scope exits do not free it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== "object") return;
  if (value instanceof Tensor) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

/**
 * Runs `fn` and frees every tensor created during it, except the tensors found in its
 * result (a Tensor, or arrays / plain objects / Maps of them) and tensors passed to
 * `keep()`. Kept results move to the enclosing scope.
 */
export function scope<T>(fn: () => T): T {
  return runScope(fn, false);
}

/**
 * Like {@link scope} for a piece of a differentiable forward pass (a network block):
 * tensors created in `fn` and not returned are freed at once unless a recorded backward
 * rule saved them; those move to the enclosing scope (if any) and are freed as soon as
 * the tape has run every rule that reads them (or when the enclosing scope exits,
 * whichever is first). Tensors the tape only traverses — e.g. the two products of `a·x + b·y` — need
 * no memory between forward and backward, which lowers a training step's peak.
 */
export function graphScope<T>(fn: () => T): T {
  return runScope(fn, true);
}

function runScope<T>(fn: () => T, keepSaved: boolean): T {
  const mine = new Set<Tensor>();
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    scopes.pop();
    for (const t of mine) t.dispose();
    throw error;
  }
  scopes.pop();
  if (result instanceof Promise) {
    throw new TypeError("Cannot use scope() with an async function: use a synchronous step");
  }
  const survivors = new Set<Tensor>();
  collect(result, survivors);
  const parent = scopes.at(-1);
  for (const t of mine) {
    if (survivors.has(t)) parent?.add(t);
    else if (keepSaved && t.savedForBackward) {
      // Outside any scope it lives until the tape runs its rules (or the finalizer).
      orphans.add(t);
      parent?.add(t);
    } else t.dispose();
  }
  return result;
}
