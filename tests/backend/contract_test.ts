/**
 * The kernel contract (src/backend/contract.ts) is the one source of truth: the committed
 * C files generated from it are current, the C header declares exactly its kernels with
 * the C types its arguments map to, and every backend implements every kernel.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { KERNEL_NAMES, KERNELS } from "../../src/backend/contract.ts";
import { cParams, methodName } from "../../src/backend/kernel_spec.ts";
import { REPO_ROOT } from "../../src/backend/library_paths.ts";
import { FBP_ABI_SYMBOLS, NativeBackend, type NativeLibrary } from "../../src/backend/native.ts";
import { ReferenceBackend } from "../../src/backend/reference.ts";
import { generatedAbiFiles } from "../../tasks/_build/abi_codegen.ts";

Deno.test("the committed fbp.h, kernels.h, abi.inc and kernel_types.ts are what the contract generates", async () => {
  for (const [rel, text] of Object.entries(generatedAbiFiles())) {
    const onDisk = await Deno.readTextFile(join(REPO_ROOT, rel));
    assert.ok(onDisk === text, `${rel} differs from src/backend/contract.ts: run deno task build`);
  }
});

/** The prototypes of fbp.h read as text: name → C parameter types. */
async function headerPrototypes(): Promise<Map<string, string[]>> {
  const text = await Deno.readTextFile(join(REPO_ROOT, "native/include/fbp.h"));
  const out = new Map<string, string[]>();
  for (const m of text.matchAll(/^(?:const )?\w+ \**(\w+)\(([^)]*)\);/gm)) {
    const params = m[2].trim() === "void"
      ? []
      : m[2].split(",").map((p) =>
        p.trim().replace(/\s+/g, " ").replace(/\s*\w+$/, "").replace(/ \*/, "*")
      );
    out.set(m[1], params);
  }
  return out;
}

Deno.test("fbp.h declares every kernel of the contract, and only those, with its C types", async () => {
  const protos = await headerPrototypes();
  const kernels = [...protos.keys()].filter((n) => !n.startsWith("fbp_"));
  assert.deepEqual(kernels.sort(), [...KERNEL_NAMES].sort());
  const ffi: Record<string, string> = {
    "float*": "pointer",
    "const float*": "pointer",
    int: "i32",
    int64_t: "i64",
    float: "f32",
    uint32_t: "u32",
  };
  for (const name of KERNEL_NAMES) {
    const types = protos.get(name)!;
    assert.equal(types.length, cParams(KERNELS[name]).length, `${name}: parameter count`);
    assert.deepEqual(
      types.map((t) => ffi[t] ?? t),
      FBP_ABI_SYMBOLS[name].parameters,
      `${name}: the FFI signature must match the header`,
    );
  }
  // The runtime functions too (fbp_alloc, fbp_copy_in, …).
  for (const name of Object.keys(FBP_ABI_SYMBOLS)) assert.ok(protos.has(name), name);
});

Deno.test("the reference backend implements every kernel of the contract", () => {
  const b = new ReferenceBackend() as unknown as Record<string, unknown>;
  for (const name of KERNEL_NAMES) {
    assert.equal(typeof b[methodName(name)], "function", `reference lacks ${methodName(name)}`);
  }
});

Deno.test("a library built from another contract is refused when it is opened", () => {
  const digest = new TextEncoder().encode("0123456789abcdef\0");
  const fake = {
    symbols: { fbp_contract: () => Deno.UnsafePointer.of(digest), fbp_init: () => 0 },
    close() {},
  } as unknown as NativeLibrary;
  assert.throws(
    () => new NativeBackend("cpu", fake, "old/libfbp_cpu.so", (r) => new Error(r)),
    /built from another kernel contract \(0123456789abcdef, expected [0-9a-f]{16}\).*deno task build/,
  );
});
