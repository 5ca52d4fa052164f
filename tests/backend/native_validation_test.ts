/**
 * The C library's own argument checks (issue 8), called directly through FFI with no
 * TypeScript validation in front: every required pointer set to NULL, every size set to 0
 * and −1, and sizes whose product overflows (or exceeds any buffer) must each return an
 * error status with a message, never touch memory. Under `deno task test:asan` the same
 * calls run in the AddressSanitizer build, where a missed check is a reported bad access.
 */
import assert from "node:assert/strict";
import { ensureCpuLibrary } from "../../src/backend/native_build.ts";

const P = "pointer", I = "i32", F = "f32", L = "i64", U = "u32";
type Kind = typeof P | typeof I | typeof F | typeof L | typeof U;

/**
 * One ABI function: its parameter kinds, which pointers may be NULL, which sizes must be
 * >= 1 and which >= 0, and a valid argument list for tiny shapes (all sizes 1 or 2).
 */
interface Fn {
  name: string;
  params: Kind[];
  /** Valid values of the non-pointer parameters, by position (pointers are filled in). */
  values: Record<number, number | bigint>;
  optional?: number[];
  positive?: number[];
  nonNegative?: number[];
  /** Positions of 4-D size groups (N, C, H, W …) to blow up for the overflow check. */
  dims?: number[][];
}

const i4 = (from: number) => [from, from + 1, from + 2, from + 3];
const FNS: Fn[] = [
  { name: "fill_forward", params: [P, F, L], values: { 1: 1, 2: 4n }, nonNegative: [2] },
  {
    name: "copy_forward",
    params: [P, L, P, L, L, I],
    values: { 1: 0n, 3: 0n, 4: 4n, 5: 0 },
    nonNegative: [1, 3, 4],
  },
  {
    name: "conv2d_forward",
    params: [P, P, P, P, I, I, I, I, I, I, I, I, I],
    values: { 4: 1, 5: 1, 6: 2, 7: 2, 8: 1, 9: 1, 10: 1, 11: 1, 12: 0 },
    optional: [3],
    positive: [4, 5, 6, 7, 8, 9, 10, 11],
    nonNegative: [12],
    dims: [i4(4)],
  },
  {
    name: "conv2d_backward_data",
    params: [P, P, P, I, I, I, I, I, I, I, I, I],
    values: { 3: 1, 4: 1, 5: 2, 6: 2, 7: 1, 8: 1, 9: 1, 10: 1, 11: 0 },
    positive: [3, 4, 5, 6, 7, 8, 9, 10],
    nonNegative: [11],
    dims: [i4(3)],
  },
  {
    name: "conv2d_backward_weights",
    params: [P, P, P, P, I, I, I, I, I, I, I, I, I],
    values: { 4: 1, 5: 1, 6: 2, 7: 2, 8: 1, 9: 1, 10: 1, 11: 1, 12: 0 },
    optional: [1],
    positive: [4, 5, 6, 7, 8, 9, 10, 11],
    nonNegative: [12],
    dims: [i4(4)],
  },
  {
    name: "batchnorm_forward_train",
    params: [P, P, P, P, P, P, I, I, I, I, F],
    values: { 6: 2, 7: 1, 8: 1, 9: 2, 10: 1e-5 },
    positive: i4(6),
    dims: [i4(6)],
  },
  {
    name: "batchnorm_forward_infer",
    params: [P, P, P, P, P, P, I, I, I, I, F],
    values: { 6: 2, 7: 1, 8: 1, 9: 2, 10: 1e-5 },
    positive: i4(6),
    dims: [i4(6)],
  },
  {
    name: "batchnorm_backward",
    params: [P, P, P, P, P, P, P, P, I, I, I, I, F],
    values: { 8: 2, 9: 1, 10: 1, 11: 2, 12: 1e-5 },
    positive: i4(8),
    dims: [i4(8)],
  },
  {
    name: "maxpool2d_forward",
    params: [P, P, I, I, I, I, I, I, I],
    values: { 2: 1, 3: 1, 4: 2, 5: 2, 6: 2, 7: 1, 8: 0 },
    positive: [2, 3, 4, 5, 6, 7],
    nonNegative: [8],
    dims: [i4(2)],
  },
  {
    name: "maxpool2d_backward",
    params: [P, P, P, I, I, I, I, I, I, I],
    values: { 3: 1, 4: 1, 5: 2, 6: 2, 7: 2, 8: 1, 9: 0 },
    positive: [3, 4, 5, 6, 7, 8],
    nonNegative: [9],
    dims: [i4(3)],
  },
  {
    name: "avgpool_global_forward",
    params: [P, P, I, I, I, I],
    values: { 2: 1, 3: 2, 4: 2, 5: 2 },
    positive: i4(2),
    dims: [i4(2)],
  },
  {
    name: "avgpool_global_backward",
    params: [P, P, I, I, I, I],
    values: { 2: 1, 3: 2, 4: 2, 5: 2 },
    positive: i4(2),
    dims: [i4(2)],
  },
  {
    name: "linear_forward",
    params: [P, P, P, P, I, I, I],
    values: { 4: 2, 5: 2, 6: 2 },
    optional: [3],
    positive: [4, 5, 6],
  },
  {
    name: "linear_backward",
    params: [P, P, P, P, P, P, I, I, I],
    values: { 6: 2, 7: 2, 8: 2 },
    optional: [0, 2],
    positive: [6, 7, 8],
  },
  { name: "unary_forward", params: [P, P, L, I], values: { 2: 4n, 3: 0 }, nonNegative: [2] },
  {
    name: "unary_backward",
    params: [P, P, P, P, L, I],
    values: { 4: 4n, 5: 0 }, // ReLU: needs inp, not out
    optional: [3],
    nonNegative: [4],
  },
  {
    name: "scale_forward",
    params: [P, P, F, F, L],
    values: { 2: 2, 3: 1, 4: 4n },
    nonNegative: [4],
  },
  {
    name: "binary_forward",
    params: [P, P, P, I, I, I, I, I, I, I, I, I],
    values: { 3: 1, 4: 2, 5: 1, 6: 2, 7: 1, 8: 2, 9: 1, 10: 2, 11: 0 },
    positive: [...i4(3), ...i4(7)],
    dims: [i4(3), i4(7)],
  },
  {
    name: "sum_to_forward",
    params: [P, P, I, I, I, I, I, I, I, I],
    values: { 2: 1, 3: 2, 4: 1, 5: 2, 6: 1, 7: 1, 8: 1, 9: 2 },
    positive: [...i4(2), ...i4(6)],
    dims: [i4(2)],
  },
  {
    name: "broadcast_forward",
    params: [P, P, I, I, I, I, I, I, I, I],
    values: { 2: 1, 3: 1, 4: 1, 5: 2, 6: 1, 7: 2, 8: 1, 9: 2 },
    positive: [...i4(2), ...i4(6)],
    dims: [i4(6)],
  },
  {
    name: "softmax_forward",
    params: [P, P, I, I],
    values: { 2: 2, 3: 2 },
    positive: [2, 3],
  },
  {
    name: "softmax_backward",
    params: [P, P, P, I, I],
    values: { 3: 2, 4: 2 },
    positive: [3, 4],
  },
  {
    name: "aff_fuse_forward",
    params: [P, P, P, P, P, F, I, I, I, I],
    values: { 5: 2, 6: 1, 7: 2, 8: 2, 9: 2 },
    positive: i4(6),
    dims: [i4(6)],
  },
  {
    name: "aff_fuse_backward",
    params: [P, P, P, P, P, P, P, P, P, F, I, I, I, I],
    values: { 9: 2, 10: 1, 11: 2, 12: 2, 13: 2 },
    positive: i4(10),
    dims: [i4(10)],
  },
  {
    name: "cross_entropy_forward",
    params: [P, P, P, P, P, I, I],
    values: { 5: 2, 6: 2 },
    optional: [4],
    positive: [5, 6],
  },
  {
    name: "cross_entropy_backward",
    params: [P, P, P, P, P, I, I],
    values: { 5: 2, 6: 2 },
    optional: [4],
    positive: [5, 6],
  },
  {
    name: "dropout_forward",
    params: [P, P, P, L, F, U],
    values: { 3: 4n, 4: 0.5, 5: 7 },
    nonNegative: [3],
  },
  {
    name: "adamw_update",
    params: [P, P, P, P, L, F, F, F, F, F, I],
    values: { 4: 4n, 5: 1e-3, 6: 0.9, 7: 0.999, 8: 1e-8, 9: 0.01, 10: 1 },
    nonNegative: [4],
    positive: [10],
  },
];

const symbols: Record<string, Deno.ForeignFunction> = {
  fbp_last_error: { parameters: [], result: P },
  fbp_alloc: { parameters: [L], result: P },
};
for (const f of FNS) symbols[f.name] = { parameters: f.params, result: I };

const path = Deno.env.get("FBP_CPU_LIB") ?? await ensureCpuLibrary({ quiet: true });
const lib = Deno.dlopen(path, symbols);
// deno-lint-ignore no-explicit-any
const call = (name: string, args: unknown[]): number => (lib.symbols as any)[name](...args);
const lastError = () => Deno.UnsafePointerView.getCString(call("fbp_last_error", []) as never);

// Scratch buffers larger than any tiny shape above needs; targets (class 0) are zeros.
const buffers = Array.from({ length: 10 }, () => new Float32Array(256));
const pointers = buffers.map((b) => Deno.UnsafePointer.of(b));

function argsOf(f: Fn, over: Record<number, unknown> = {}): unknown[] {
  let next = 0;
  return f.params.map((kind, i) => {
    if (i in over) return over[i];
    if (kind === P) return pointers[next++];
    return f.values[i];
  });
}

Deno.test("every ABI function accepts its tiny valid call", () => {
  for (const f of FNS) {
    for (const b of buffers) b.fill(0);
    buffers[1].fill(1); // positive inputs (e.g. a variance)
    assert.equal(call(f.name, argsOf(f)), 0, `${f.name}: ${lastError()}`);
  }
});

Deno.test("every required pointer set to NULL is an error, not a crash", () => {
  for (const f of FNS) {
    f.params.forEach((kind, i) => {
      if (kind !== P || f.optional?.includes(i)) return;
      const rc = call(f.name, argsOf(f, { [i]: null }));
      assert.equal(rc, 1, `${f.name} with parameter ${i} NULL returned ${rc}`);
      assert.match(lastError(), /is NULL/, `${f.name} parameter ${i}`);
    });
  }
});

Deno.test("sizes of 0 or below are errors naming the size", () => {
  for (const f of FNS) {
    for (const i of f.positive ?? []) {
      for (const v of [0, -1, -2147483648]) {
        const rc = call(f.name, argsOf(f, { [i]: v }));
        assert.equal(rc, 1, `${f.name} with parameter ${i} = ${v} returned ${rc}`);
        assert.match(lastError(), /must be >= 1|< 1/, `${f.name} parameter ${i} = ${v}`);
      }
    }
    for (const i of f.nonNegative ?? []) {
      const v = f.params[i] === L ? -1n : -1;
      const rc = call(f.name, argsOf(f, { [i]: v }));
      assert.equal(rc, 1, `${f.name} with parameter ${i} = -1 returned ${rc}`);
      assert.match(lastError(), /must be >= 0/, `${f.name} parameter ${i}`);
    }
  }
});

Deno.test("sizes whose product overflows, or exceeds any buffer, are errors", () => {
  for (const f of FNS) {
    for (const group of f.dims ?? []) {
      for (const dims of [[65536, 65536, 65536, 65536], [32768, 32768, 32768, 131072]]) {
        const over: Record<number, number> = {};
        group.forEach((p, k) => (over[p] = dims[k]));
        // Keep broadcast and reduction pairs consistent so only the size is at fault.
        if (f.name === "binary_forward") group.forEach((p) => (over[p < 7 ? p + 4 : p - 4] = 1));
        if (f.name === "sum_to_forward") i4(6).forEach((p) => (over[p] = 1));
        if (f.name === "broadcast_forward") i4(2).forEach((p) => (over[p] = 1));
        if (f.name.startsWith("conv2d")) Object.assign(over, { 8: 1, 9: 1, 10: 1 }); // K, R, S
        const rc = call(f.name, argsOf(f, over));
        assert.equal(rc, 1, `${f.name} with sizes ${dims} returned ${rc}`);
        assert.match(lastError(), /more elements than any buffer can hold/, f.name);
      }
    }
  }
  // copy_forward: an offset so large that offset + n wraps around.
  assert.equal(
    call("copy_forward", [pointers[0], 2n ** 62n, pointers[1], 0n, 2n ** 62n, 0]),
    1,
  );
  assert.match(lastError(), /offset \+ n is past any buffer/);
  assert.equal(call("fbp_alloc", [2n ** 62n]), null);
  assert.match(lastError(), /do not fit in memory/);
  assert.equal(call("fbp_alloc", [-1n]), null);
  assert.match(lastError(), /must be >= 0/);
});

Deno.test("close the library", () => {
  lib.close();
});
