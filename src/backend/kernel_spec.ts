/**
 * The vocabulary of the kernel contract (contract.ts): what an argument or a rule of a
 * kernel can be, and the helpers that walk a kernel's declaration.
 * @module
 */

/** Backend-owned memory holding `size` float32 values. */
export interface Storage {
  /** Number of floats. */
  readonly size: number;
}

/** A 4-D shape used by the broadcasting kernels. */
export type Shape4 = readonly [number, number, number, number];

/** A float32 buffer argument: its sizes (names of size arguments) and whether it is written. */
export interface TensorArg {
  readonly kind: "tensor";
  /** "out": written by the kernel (a C `float *`); "in": read (`const float *`). */
  readonly io: "in" | "out";
  /** Sizes whose product is the element count (names of ints, shape elements or derived sizes). */
  readonly dims: readonly string[];
  /** May be NULL; the kernel then skips what it would compute with it. */
  readonly nullable?: boolean;
  /** Required only when the enum argument `arg` is one of `values` (NULL allowed otherwise). */
  readonly requiredIf?: { readonly arg: string; readonly values: readonly string[] };
}

/** An integer argument: C `int` (i32) or `int64_t` (i64), checked against a minimum. */
export interface IntArg {
  readonly kind: "int";
  readonly c: "int" | "int64_t";
  /** Smallest valid value: 1 for sizes, 0 for counts and offsets. */
  readonly min: number;
  /** Wording of the error: "size" (`size 'N' must be >= 1`) or a plain value. */
  readonly size?: boolean;
}

/** A float32 argument with an optional valid range (NaN is always refused when ranged). */
export interface FloatArg {
  readonly kind: "float";
  readonly min?: number;
  readonly max?: number;
}

/** A C `uint32_t` (e.g. a seed). */
export interface U32Arg {
  readonly kind: "u32";
}

/** A flag, a C `int` 0 or 1. */
export interface BoolArg {
  readonly kind: "bool";
}

/** One of named codes, a C `int` (the names are what TypeScript passes). */
export interface EnumArg {
  readonly kind: "enum";
  /** The C enum type whose codes these are. */
  readonly cType: string;
  readonly values: Readonly<Record<string, number>>;
}

/** Four C `int` sizes `<prefix>0..3`, a {@link Shape4} in TypeScript; each >= 1. */
export interface Shape4Arg {
  readonly kind: "shape4";
  readonly prefix: string;
}

/** Any argument. */
export type ArgSpec = TensorArg | IntArg | FloatArg | U32Arg | BoolArg | EnumArg | Shape4Arg;

/**
 * A rule over several arguments (flat C names):
 * - `["window", P, x, k, stride, pad, ceil?]`: P = (x + 2·pad − k)/stride + 1 must be >= 1
 *   (rounded up when the bool argument `ceil` is set, PyTorch's ceil_mode);
 * - `["groups", Cg, C, K, G]`: C and K are multiples of G; Cg = C/G (a size the weight has);
 * - `["strided", off, step, n, C]`: channels off, off + step, … (n of them) lie below C;
 * - `["max", o, a, b]`: o = max(a, b) (a size the output has);
 * - `["broadcast", a, b]`: shapes a and b are equal or 1 in each dimension;
 * - `["reduce", from, to]`: each dimension of `to` equals that of `from` or is 1;
 * - `["span", off, n, tensor]`: off + n stays below the largest buffer (and, where sizes
 *   are known, within `tensor`).
 */
export type Rule =
  | readonly ["window", string, string, string, string, string]
  | readonly ["window", string, string, string, string, string, string]
  | readonly ["groups", string, string, string, string]
  | readonly ["strided", string, string, string, string]
  | readonly ["max", string, string, string]
  | readonly ["broadcast", string, string]
  | readonly ["reduce", string, string]
  | readonly ["span", string, string, string];

/** One kernel of the ABI. */
export interface KernelSpec {
  /** Heading of its section in fbp.h. */
  readonly section: string;
  /** What it computes, as written above its prototype in fbp.h. */
  readonly doc: string;
  readonly args: Readonly<Record<string, ArgSpec>>;
  readonly rules?: readonly Rule[];
  /** When this count is 0 the call succeeds at once (pointers may then be NULL). */
  readonly emptyIf?: string;
}

/** A size: C `int`, at least 1. */
export const size: IntArg = { kind: "int", c: "int", min: 1, size: true };
/** A count or offset: C `int64_t`, at least 0. */
export const count: IntArg = { kind: "int", c: "int64_t", min: 0 };
/** A float32 with no range. */
export const f32: FloatArg = { kind: "float" };
/** A non-negative float32 (an epsilon). */
export const eps: FloatArg = { kind: "float", min: 0 };
/** A buffer the kernel writes, of the given sizes. */
export function out(...dims: string[]): TensorArg {
  return { kind: "tensor", io: "out", dims };
}
/** A buffer the kernel reads, of the given sizes. */
export function inp(...dims: string[]): TensorArg {
  return { kind: "tensor", io: "in", dims };
}
/** The buffer may be NULL (its output is skipped). */
export function nullable(t: TensorArg): TensorArg & { nullable: true } {
  return { ...t, nullable: true };
}
/** The buffer is required only when enum `arg` is one of `values`. */
export function optionalUnless(
  t: TensorArg,
  arg: string,
  values: readonly string[],
): TensorArg & { requiredIf: { arg: string; values: readonly string[] } } {
  return { ...t, requiredIf: { arg, values } };
}
/** A 4-D shape: C ints `<prefix>0..3`. */
export function s4(prefix: string): Shape4Arg {
  return { kind: "shape4", prefix };
}
/** The four size names of a 4-D shape. */
export function d4(prefix: string): string[] {
  return [`${prefix}0`, `${prefix}1`, `${prefix}2`, `${prefix}3`];
}

/** snake_case → camelCase, at the type level ("conv2d_forward" → "conv2dForward"). */
export type CamelCase<S extends string> = S extends `${infer A}_${infer B}`
  ? `${A}${Capitalize<CamelCase<B>>}`
  : S;

/** The method name of a kernel ("conv2d_forward" → "conv2dForward"). */
export function methodName<N extends string>(name: N): CamelCase<N> {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase()) as CamelCase<N>;
}

/** The flat C parameters of a kernel: name and spec, shape4 arguments expanded to 4 ints. */
export function cParams(
  spec: KernelSpec,
): { name: string; arg: string; spec: ArgSpec; index?: number }[] {
  const params: { name: string; arg: string; spec: ArgSpec; index?: number }[] = [];
  for (const [arg, a] of Object.entries(spec.args)) {
    if (a.kind === "shape4") {
      for (let k = 0; k < 4; k++) params.push({ name: `${a.prefix}${k}`, arg, spec: a, index: k });
    } else params.push({ name: arg, arg, spec: a });
  }
  return params;
}

/**
 * A digest of a contract table (FNV-1a over its JSON, two 32-bit lanes): the generated C
 * returns the digest it was generated from (`fbp_contract()`), so a library built from an
 * older contract is refused when it is opened instead of misreading its arguments.
 */
export function contractDigest(table: unknown): string {
  const text = JSON.stringify(table);
  let a = 0x811c9dc5, b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}
