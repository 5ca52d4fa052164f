/**
 * The binding shared by every native backend library (cpu: oneDNN, cuda: cuDNN/cuBLAS):
 * the FFI signatures of native/include/fbp.h, derived from the kernel contract
 * (contract.ts), and one Backend implementation over them. Every kernel is one FFI call;
 * a non-zero status becomes an Error carrying the library's fbp_last_error() text. The
 * argument checks run in the library (native/common/abi.inc, generated from the same
 * contract). cpu.ts and cuda.ts only find and open their library.
 *
 * Cost notes (measured with Deno 2): a call whose arguments are pointers, i32 and f32
 * takes ~5 ns; an "i64" argument passed as a JS number leaves V8's fast path (~75 ns),
 * while a BigInt stays on it (~15 ns including `BigInt(n)`), so int64_t sizes are passed
 * as BigInt. Each Storage keeps the pointer fbp_alloc returned, so no call re-derives it.
 * @module
 */
import type { Backend, MathSettings, Storage } from "./backend.ts";
import {
  CONTRACT_DIGEST,
  KERNEL_NAMES,
  type KernelName,
  KERNELS,
  type Kernels,
  Precision,
} from "./contract.ts";
import { type ArgSpec, cParams, methodName } from "./kernel_spec.ts";
import { displayPath } from "./library_paths.ts";

const P = "pointer", I = "i32", L = "i64";

/** The runtime functions of fbp.h (memory, errors), outside the kernel contract. */
const RUNTIME_SYMBOLS = {
  fbp_last_error: { parameters: [], result: P },
  fbp_backend_info: { parameters: [], result: P },
  fbp_init: { parameters: [], result: I },
  fbp_alloc: { parameters: [L], result: P },
  fbp_free: { parameters: [P], result: I },
  fbp_copy_in: { parameters: [P, "buffer", L], result: I },
  fbp_copy_out: { parameters: ["buffer", P, L], result: I },
  fbp_sync: { parameters: [], result: I },
  fbp_release_cache: { parameters: [], result: I },
  fbp_contract: { parameters: [], result: P },
  fbp_set_math: { parameters: [I, I], result: I },
} as const satisfies Deno.ForeignLibraryInterface;

/** The FFI type of one C parameter. */
function ffiType(a: ArgSpec): Deno.NativeType {
  switch (a.kind) {
    case "tensor":
      return P;
    case "int":
      return a.c === "int64_t" ? L : I;
    case "float":
      return "f32";
    case "u32":
      return "u32";
    default: // bool, enum, shape4 elements: C int
      return I;
  }
}

/**
 * The functions of native/include/fbp.h as Deno FFI signatures: every backend library
 * exports exactly these.
 */
export const FBP_ABI_SYMBOLS = {
  ...RUNTIME_SYMBOLS,
  ...Object.fromEntries(
    KERNEL_NAMES.map((name) => [name, {
      parameters: cParams(KERNELS[name]).map((p) => ffiType(p.spec)),
      result: I,
    }]),
  ) as unknown as Record<KernelName, Deno.ForeignFunction>,
} satisfies Deno.ForeignLibraryInterface;

/** An opened backend library. */
export type NativeLibrary = Deno.DynamicLibrary<typeof FBP_ABI_SYMBOLS>;
type Symbols = NativeLibrary["symbols"];

/** Native storage: memory from the library's fbp_alloc; `ptr` is null once freed. */
export class NativeStorage implements Storage {
  constructor(public ptr: Deno.PointerObject | null, readonly size: number) {}
}

function p(s: Storage): Deno.PointerObject | null {
  return (s as NativeStorage).ptr;
}

/** Reads a C string returned by the library ("" for NULL). */
export function cString(ptr: Deno.PointerValue): string {
  return ptr === null ? "" : Deno.UnsafePointerView.getCString(ptr);
}

type Args = Readonly<Record<string, unknown>>;

/** The JavaScript expression that turns named argument `a.<arg>` into its C parameter. */
function marshalExpression(param: ReturnType<typeof cParams>[number], i: number): string {
  const { arg, spec, index } = param;
  if (!/^[A-Za-z_]\w*$/.test(arg)) throw new Error(`Bad argument name in the contract: ${arg}`);
  const v = `a.${arg}`;
  switch (spec.kind) {
    case "tensor":
      return `(${v} == null ? null : ${v}.ptr)`;
    case "int":
      return spec.c === "int64_t" ? `BigInt(${v})` : v;
    case "bool":
      return `(${v} ? 1 : 0)`;
    case "enum":
      // An unknown name becomes -1, which the library refuses naming the kernel.
      return `(Object.hasOwn(codes[${i}], ${v}) ? codes[${i}][${v}] : -1)`;
    case "shape4":
      return `${v}[${index}]`;
    default:
      return v;
  }
}

/**
 * The method of one kernel: one straight-line FFI call built from the contract. Written as
 * generated code (not a loop over the parameters and a spread call) because V8 then keeps
 * the FFI fast path: ~7 ns per call instead of ~160 ns with an argument array.
 */
function kernelMethod(
  name: KernelName,
  fn: unknown,
  fail: () => never,
): (args: Args) => void {
  const params = cParams(KERNELS[name]);
  const codes = params.map((p) => (p.spec.kind === "enum" ? p.spec.values : null));
  const call = params.map(marshalExpression).join(", ");
  const make = new Function(
    "fn",
    "fail",
    "codes",
    `return (a) => { if (fn(${call}) !== 0) fail(); };`,
  );
  return make(fn, fail, codes);
}

/**
 * Opens a backend library, or throws an Error naming the path and whether it exists.
 * @param what the backend's label in the message, e.g. "CPU"
 */
export function openNativeLibrary(libPath: string, what: string): NativeLibrary {
  try {
    return Deno.dlopen(libPath, FBP_ABI_SYMBOLS);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    let exists = true;
    try {
      Deno.statSync(libPath);
    } catch {
      exists = false;
    }
    throw new Error(
      `Cannot load the ${what} backend library ${displayPath(libPath)}: ` +
        (exists ? why : "the file does not exist") + ". Run `deno task build`.",
    );
  }
}

/** An empty base typed as the kernel table: the constructor installs the methods. */
const KernelMethods = class {} as unknown as new () => Kernels;

/** A Backend over an fbp.h library. */
export class NativeBackend extends KernelMethods implements Backend {
  /** "cpu" or "cuda". */
  readonly name: string;
  /** Path of the loaded library. */
  readonly libraryPath: string;
  /** The library's description line, e.g. "cpu: oneDNN 2.6.3 (OpenMP)". */
  readonly info: string;
  #lib: NativeLibrary;
  #s: Symbols;

  /**
   * Wraps an opened library and initialises it.
   * @param initError makes the Error thrown when fbp_init fails, from the library's reason
   */
  constructor(
    name: string,
    lib: NativeLibrary,
    libraryPath: string,
    initError: (reason: string) => Error,
  ) {
    super();
    this.name = name;
    this.#lib = lib;
    this.#s = lib.symbols;
    this.libraryPath = libraryPath;
    const built = cString(this.#s.fbp_contract());
    if (built !== CONTRACT_DIGEST) {
      throw new Error(
        `Cannot use the ${name} backend library ${displayPath(libraryPath)}: it was built ` +
          `from another kernel contract (${built}, expected ${CONTRACT_DIGEST}). ` +
          "Hint: run `deno task build`",
      );
    }
    if (this.#s.fbp_init() !== 0) throw initError(cString(this.#s.fbp_last_error()));
    this.info = cString(this.#s.fbp_backend_info());
    for (const name of KERNEL_NAMES) this.#bind(name);
  }

  /** Installs the method of kernel `name`: marshal the named arguments, call, check. */
  #bind(name: KernelName): void {
    const method = kernelMethod(name, this.#s[name], () => this.#fail(name));
    // Writable and configurable, so a Proxy around the backend (bench's profile, the
    // counting test backend) may return its own wrapper for the method.
    Object.defineProperty(this, methodName(name), {
      value: method,
      writable: true,
      configurable: true,
    });
  }

  /** Unloads the library; storages of this backend must not be used afterwards. */
  close(): void {
    this.#lib.close();
  }

  #fail(kernel: string): never {
    throw new Error(`Cannot run kernel "${kernel}": ${cString(this.#s.fbp_last_error())}`);
  }

  alloc(n: number): Storage {
    const ptr = this.#s.fbp_alloc(BigInt(n));
    if (ptr === null) this.#fail("fbp_alloc");
    return new NativeStorage(ptr, n);
  }
  free(s: Storage): void {
    const st = s as NativeStorage;
    if (st.ptr === null) return;
    if (this.#s.fbp_free(st.ptr) !== 0) this.#fail("fbp_free");
    st.ptr = null;
  }
  copyIn(dst: Storage, src: Float32Array): void {
    if (src.length !== dst.size) {
      throw new RangeError(
        `Cannot copy in: source has ${src.length} floats, storage holds ${dst.size}`,
      );
    }
    if (this.#s.fbp_copy_in(p(dst), src, BigInt(src.length)) !== 0) this.#fail("fbp_copy_in");
  }
  copyOut(src: Storage): Float32Array {
    const out = new Float32Array(src.size);
    if (this.#s.fbp_copy_out(out, p(src), BigInt(src.size)) !== 0) this.#fail("fbp_copy_out");
    return out;
  }
  sync(): void {
    if (this.#s.fbp_sync() !== 0) this.#fail("fbp_sync");
  }
  releaseCache(): void {
    if (this.#s.fbp_release_cache() !== 0) this.#fail("fbp_release_cache");
  }
  /**
   * The math of this library. It is one setting per loaded library, not per object: a
   * second backend object over the same library file shares it (dlopen returns the same
   * library), so it is kept by library path.
   */
  get math(): Readonly<MathSettings> {
    return MATH_BY_LIBRARY.get(this.libraryPath) ?? FP32;
  }
  setMath(math: MathSettings): void {
    const code = Precision[math.precision];
    if (code === undefined) {
      throw new Error(
        `Cannot set precision "${math.precision}": expected ${Object.keys(Precision).join(", ")}`,
      );
    }
    if (this.#s.fbp_set_math(code, math.deterministic ? 1 : 0) !== 0) {
      throw new Error(
        `Cannot compute in ${math.precision} on the ${this.name} backend: ` +
          cString(this.#s.fbp_last_error()),
      );
    }
    MATH_BY_LIBRARY.set(this.libraryPath, { ...math });
  }
}

/** The library's math until fbp_set_math is called. */
const FP32: Readonly<MathSettings> = { precision: "fp32", deterministic: false };
/** The math each loaded library was last set to, by library path. */
const MATH_BY_LIBRARY = new Map<string, Readonly<MathSettings>>();
