/**
 * The C library's own argument checks (native/common/abi.inc, generated from the kernel
 * contract), called directly through FFI with no TypeScript validation in front: every
 * required pointer set to NULL, every size set to 0 and −1, and sizes whose product
 * overflows (or exceeds any buffer) must each return an error status with a message, never
 * touch memory. The cases are derived from src/backend/contract.ts, so a new kernel is
 * covered by declaring it. Under `deno task test:asan` the same calls run in the
 * AddressSanitizer build, where a missed check is a reported bad access.
 */
import assert from "node:assert/strict";
import { CPU_LIBRARY_PATH } from "../../src/backend/library_paths.ts";
import { KERNEL_NAMES, KERNELS } from "../../src/backend/contract.ts";
import { cParams } from "../../src/backend/kernel_spec.ts";
import { FBP_ABI_SYMBOLS } from "../../src/backend/native.ts";

type Param = ReturnType<typeof cParams>[number];

/** One ABI function: its flat C parameters and a valid value for each non-pointer one. */
interface Fn {
  name: string;
  params: Param[];
  values: unknown[];
}

/** A tiny valid value: sizes 1, counts 4 (pad 0), floats inside their range, enum code 0. */
function validValue(p: Param): unknown {
  const a = p.spec;
  switch (a.kind) {
    case "int":
      if (a.c === "int64_t") return 4n;
      return a.min === 0 ? 0 : 1;
    case "float":
      return a.max !== undefined ? 0.5 : a.min !== undefined ? 1e-5 : 0.5;
    case "u32":
      return 7;
    case "enum":
      return Object.values(a.values)[0];
    case "tensor":
      return null; // filled with a scratch buffer
    default: // bool, shape4 element
      return a.kind === "bool" ? 0 : 1;
  }
}

const FNS: Fn[] = KERNEL_NAMES.map((name) => {
  const params = cParams(KERNELS[name]);
  const values = params.map(validValue);
  // A strided channel range (off + (n − 1)·step below a size of 1): offset 0, one channel.
  const set = (arg: string, v: number) => {
    const i = params.findIndex((p) => p.name === arg), a = params[i].spec;
    values[i] = a.kind === "int" && a.c === "int64_t" ? BigInt(v) : v;
  };
  for (const rule of KERNELS[name].rules ?? []) {
    if (rule[0] !== "strided") continue;
    set(rule[1], 0);
    set(rule[3], 1);
  }
  return { name, params, values };
});

const symbols: Record<string, Deno.ForeignFunction> = {
  fbp_last_error: FBP_ABI_SYMBOLS.fbp_last_error,
  fbp_alloc: FBP_ABI_SYMBOLS.fbp_alloc,
};
for (const f of FNS) symbols[f.name] = FBP_ABI_SYMBOLS[f.name as keyof typeof FBP_ABI_SYMBOLS];

/** Whether pointer parameter `p` must be non-NULL in the valid call of `f`. */
function required(f: Fn, p: Param): boolean {
  if (p.spec.kind !== "tensor" || p.spec.nullable) return false;
  const r = p.spec.requiredIf;
  if (!r) return true;
  const op = f.params.findIndex((q) => q.name === r.arg);
  const spec = f.params[op].spec;
  return spec.kind === "enum" && r.values.some((v) => spec.values[v] === f.values[op]);
}

const path = Deno.env.get("FBP_CPU_LIB") ?? CPU_LIBRARY_PATH;
const lib = Deno.dlopen(path, symbols);
// deno-lint-ignore no-explicit-any
const call = (name: string, args: unknown[]): number => (lib.symbols as any)[name](...args);
const lastError = () => Deno.UnsafePointerView.getCString(call("fbp_last_error", []) as never);

// Scratch buffers larger than any tiny shape above needs; targets (class 0) are zeros.
const buffers = Array.from({ length: 10 }, () => new Float32Array(256));
const pointers = buffers.map((b) => Deno.UnsafePointer.of(b));

function argsOf(f: Fn, over: Record<number, unknown> = {}): unknown[] {
  let next = 0;
  return f.params.map((p, i) => {
    if (i in over) return over[i];
    if (p.spec.kind === "tensor") return pointers[next++];
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
    f.params.forEach((p, i) => {
      if (!required(f, p)) return;
      const rc = call(f.name, argsOf(f, { [i]: null }));
      assert.equal(rc, 1, `${f.name} with parameter ${i} NULL returned ${rc}`);
      assert.match(lastError(), /is NULL/, `${f.name} parameter ${i}`);
    });
  }
});

Deno.test("sizes of 0 or below are errors naming the size", () => {
  for (const f of FNS) {
    f.params.forEach((p, i) => {
      const a = p.spec;
      if (a.kind === "shape4" || (a.kind === "int" && a.min === 1)) {
        for (const v of [0, -1, -2147483648]) {
          const rc = call(f.name, argsOf(f, { [i]: v }));
          assert.equal(rc, 1, `${f.name} with ${p.name} = ${v} returned ${rc}`);
          assert.match(lastError(), /must be >= 1|< 1/, `${f.name} ${p.name} = ${v}`);
        }
      } else if (a.kind === "int" && a.min === 0) {
        const v = a.c === "int64_t" ? -1n : -1;
        const rc = call(f.name, argsOf(f, { [i]: v }));
        assert.equal(rc, 1, `${f.name} with ${p.name} = -1 returned ${rc}`);
        assert.match(lastError(), /must be >= 0/, `${f.name} ${p.name}`);
      }
    });
  }
});

Deno.test("sizes whose product overflows, or exceeds any buffer, are errors", () => {
  // Each 4-D buffer whose sizes are parameters is blown up in turn, the others staying tiny
  // (two int sizes cannot exceed a buffer). A blown-up buffer may first break a shape rule
  // (broadcast, reduce, window), but every kernel with such buffers must refuse at least
  // one of them as too large to exist.
  for (const f of FNS) {
    const groups = f.params
      .filter((p) => p.spec.kind === "tensor" && p.spec.dims.length >= 4)
      .map((p) =>
        (p.spec as { dims: readonly string[] }).dims.map((d) =>
          f.params.findIndex((q) => q.name === d)
        )
      )
      .filter((g) => g.every((i) => i >= 0));
    if (groups.length === 0) continue;
    let refused = 0;
    for (const group of groups) {
      for (const dims of [[65536, 65536, 65536, 65536], [32768, 32768, 32768, 131072]]) {
        const over: Record<number, number> = {};
        group.forEach((p, k) => (over[p] = dims[k] ?? 65536));
        const rc = call(f.name, argsOf(f, over));
        assert.equal(rc, 1, `${f.name} with sizes ${dims} returned ${rc}`);
        const why = lastError();
        assert.match(
          why,
          /more elements than any buffer can hold|or 1|cannot broadcast|< 1/,
          f.name,
        );
        if (/more elements than any buffer/.test(why)) refused++;
      }
    }
    assert.ok(refused > 0, `${f.name}: no oversized buffer was refused as too large`);
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
