/**
 * The contract's argument checks in TypeScript, for backends without a C library (the
 * reference backend). They follow the order and wording of the C checks that
 * tasks/_build/abi_codegen.ts generates from the same table, and add one check C cannot
 * make: every buffer holds at least the elements its sizes say.
 * @module
 */
import { type KernelArgs, type KernelName, KERNELS } from "./contract.ts";
import { cParams, type Rule, type Storage } from "./kernel_spec.ts";

/** Most elements any buffer can have: FBP_MAX_NUMEL in C (2^62 − 17 with a 64-bit size_t),
 * to the precision of a double. */
export const MAX_NUMEL: number = Math.floor((2 ** 64 - 64) / 4);

type Flat = Map<string, unknown>;

function size(v: Flat, name: string): number {
  return v.get(name) as number;
}

/**
 * Output size of a window of `k` over `x` with stride and symmetric padding; with `ceil`,
 * PyTorch's ceil_mode (rounded up, less one when the last window would start in the right
 * padding).
 */
export function windowSize(
  x: number,
  k: number,
  stride: number,
  pad: number,
  ceil = false,
): number {
  const span = x + 2 * pad - k;
  if (span < 0) return 0;
  if (!ceil) return Math.floor(span / stride) + 1;
  let o = Math.ceil(span / stride) + 1;
  if ((o - 1) * stride >= x + pad) o--;
  return o;
}

function checkRule(fn: string, rule: Rule, v: Flat, tensorOf: (prefix: string) => string) {
  const fail = (msg: string): never => {
    throw new RangeError(`${fn}: ${msg}`);
  };
  switch (rule[0]) {
    case "window": {
      const [, out, x, k, stride, pad, ceil] = rule;
      const c = ceil !== undefined && Boolean(v.get(ceil));
      const o = windowSize(size(v, x), size(v, k), size(v, stride), size(v, pad), c);
      v.set(out, o);
      if (o < 1) {
        fail(
          `output size '${out}' is ${o} < 1 (${x} ${size(v, x)}, ${k} ${size(v, k)}, ` +
            `stride ${size(v, stride)}, pad ${size(v, pad)})`,
        );
      }
      return;
    }
    case "max":
      v.set(rule[1], Math.max(size(v, rule[2]), size(v, rule[3])));
      return;
    case "groups": {
      const [, cg, c, k, g] = rule;
      if (size(v, c) % size(v, g) !== 0 || size(v, k) % size(v, g) !== 0) {
        fail(
          `${c} (${size(v, c)}) and ${k} (${size(v, k)}) must be multiples of groups ${g} (${
            size(v, g)
          })`,
        );
      }
      v.set(cg, size(v, c) / size(v, g));
      return;
    }
    case "strided": {
      const [, off, step, n, c] = rule;
      if (size(v, n) > 0 && size(v, off) + (size(v, n) - 1) * size(v, step) >= size(v, c)) {
        fail(
          `channels ${off} ${size(v, off)} + (${n} ${size(v, n)} − 1)·${step} ${
            size(v, step)
          } pass ${c} (${size(v, c)})`,
        );
      }
      return;
    }
    case "broadcast":
      for (let k = 0; k < 4; k++) {
        const a = size(v, rule[1] + k), b = size(v, rule[2] + k);
        if (a !== b && a !== 1 && b !== 1) {
          fail(`dim ${k} of ${rule[1]} (${a}) and ${rule[2]} (${b}) cannot broadcast`);
        }
      }
      return;
    case "reduce":
      for (let k = 0; k < 4; k++) {
        const from = size(v, rule[1] + k), to = size(v, rule[2] + k);
        if (to !== from && to !== 1) {
          fail(`dim ${k} of ${tensorOf(rule[2])} (${to}) must be ${from} or 1`);
        }
      }
      return;
    case "span":
      if (size(v, rule[1]) > MAX_NUMEL - size(v, rule[2])) {
        fail(
          `offset + n is past any buffer (${rule[1]} ${size(v, rule[1])}, n ${size(v, rule[2])})`,
        );
      }
      return;
  }
}

const PARAMS = new Map<KernelName, ReturnType<typeof cParams>>();

/** The flat C parameters of a kernel, computed once (the reference calls this per kernel). */
function paramsOf(name: KernelName): ReturnType<typeof cParams> {
  let p = PARAMS.get(name);
  if (!p) PARAMS.set(name, p = cParams(KERNELS[name]));
  return p;
}

/** The elements `["span", off, n, tensor]` rules reach in `tensor` (0 when none). */
function spanOf(rules: readonly Rule[] | undefined, tensor: string, v: Flat): number {
  let need = 0;
  for (const r of rules ?? []) {
    if (r[0] === "span" && r[3] === tensor) need = Math.max(need, size(v, r[1]) + size(v, r[2]));
  }
  return need;
}

/**
 * Checks the named arguments of kernel `name` against its contract.
 * @returns false when the call has nothing to do (an empty count), true otherwise
 * @throws {RangeError} naming the kernel and the argument, as the C library would
 */
export function checkKernelArgs<N extends KernelName>(name: N, named: KernelArgs<N>): boolean {
  const args = named as unknown as Readonly<Record<string, unknown>>;
  const spec = KERNELS[name];
  const params = paramsOf(name);
  const v: Flat = new Map();
  const fail = (msg: string): never => {
    throw new RangeError(`${name}: ${msg}`);
  };
  for (const { name: p, arg, spec: a, index } of params) {
    const value = a.kind === "shape4" ? (args[arg] as readonly number[])[index!] : args[arg];
    switch (a.kind) {
      case "int":
        if (!Number.isInteger(value)) fail(`'${p}' must be an integer, got ${value}`);
        if (!((value as number) >= a.min)) {
          fail(`${a.size ? "size " : ""}'${p}' must be >= ${a.min}, got ${value}`);
        }
        break;
      case "shape4":
        if (!Number.isInteger(value)) fail(`'${p}' must be an integer, got ${value}`);
        if (!((value as number) >= 1)) fail(`size '${p}' must be >= 1, got ${value}`);
        break;
      case "enum":
        if (!Object.hasOwn(a.values, value as string)) fail(`unknown ${p} ${String(value)}`);
        break;
      case "float":
        if (
          (a.min !== undefined && !((value as number) >= a.min)) ||
          (a.max !== undefined && !((value as number) <= a.max))
        ) {
          const range = a.max === undefined
            ? `>= ${a.min}`
            : a.min === undefined
            ? `<= ${a.max}`
            : `in [${a.min}, ${a.max}]`;
          fail(`${p} must be ${range}, got ${value}`);
        }
        break;
    }
    v.set(p, value);
  }
  const tensorOf = (prefix: string) =>
    params.find((q) => q.spec.kind === "tensor" && q.spec.dims[0] === `${prefix}0`)?.name ??
      prefix;
  for (const rule of spec.rules ?? []) checkRule(name, rule, v, tensorOf);
  // In abi.inc's order: element counts, then the empty call, then NULL and buffer sizes.
  const tensors = params.filter((q) => q.spec.kind === "tensor");
  const numel = new Map<string, number>();
  for (const { name: p, spec: a } of tensors) {
    const dims = (a as { dims: readonly string[] }).dims;
    const n = dims.reduce((n, d) => n * size(v, d), 1);
    if (n > MAX_NUMEL) fail(`${p} (${dims.join(", ")}) has more elements than any buffer can hold`);
    numel.set(p, n);
  }
  if (spec.emptyIf !== undefined && size(v, spec.emptyIf) === 0) return false;
  for (const { name: p, spec: a } of tensors) {
    if (a.kind !== "tensor") continue;
    const s = v.get(p) as Storage | null | undefined;
    let required = !a.nullable;
    if (a.requiredIf) required = a.requiredIf.values.includes(v.get(a.requiredIf.arg) as string);
    if (s === null || s === undefined) {
      if (required) fail(`argument '${p}' is NULL`);
      continue;
    }
    const need = Math.max(numel.get(p)!, spanOf(spec.rules, p, v));
    if (s.size < need) {
      fail(`${p} holds ${s.size} floats, expected at least ${need}`);
    }
  }
  return true;
}
