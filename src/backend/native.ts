/**
 * The binding shared by every native backend library (cpu: oneDNN, cuda: cuDNN/cuBLAS):
 * the FFI signatures of native/include/fbp.h and one Backend implementation over them.
 * Every kernel is one FFI call; a non-zero status becomes an Error carrying the
 * library's fbp_last_error() text. cpu.ts and cuda.ts only find, build and open their
 * library.
 *
 * Cost notes (measured with Deno 2): a call whose arguments are pointers, i32 and f32
 * takes ~5 ns; an "i64" argument passed as a JS number leaves V8's fast path (~75 ns),
 * while a BigInt stays on it (~15 ns including `BigInt(n)`), so int64_t sizes are passed
 * as BigInt. Each Storage keeps the pointer fbp_alloc returned, so no call re-derives it.
 * @module
 */
import type {
  AdamWHyper,
  Backend,
  BinaryOpName,
  ConvSizes,
  NchwSizes,
  PoolSizes,
  Shape4,
  Storage,
  UnaryOpName,
} from "./backend.ts";
import { BinaryOp, UnaryOp } from "./backend.ts";
import { displayPath } from "./native_build.ts";

const P = "pointer", I = "i32", F = "f32", L = "i64";

/**
 * The functions of native/include/fbp.h as Deno FFI signatures: every backend library
 * exports exactly these.
 */
export const FBP_ABI_SYMBOLS = {
  fbp_last_error: { parameters: [], result: P },
  fbp_backend_info: { parameters: [], result: P },
  fbp_init: { parameters: [], result: I },
  fbp_alloc: { parameters: [L], result: P },
  fbp_free: { parameters: [P], result: I },
  fbp_copy_in: { parameters: [P, "buffer", L], result: I },
  fbp_copy_out: { parameters: ["buffer", P, L], result: I },
  fbp_sync: { parameters: [], result: I },
  fbp_release_cache: { parameters: [], result: I },
  fill_forward: { parameters: [P, F, L], result: I },
  copy_forward: { parameters: [P, L, P, L, L, I], result: I },
  conv2d_forward: { parameters: [P, P, P, P, I, I, I, I, I, I, I, I, I], result: I },
  conv2d_backward_data: { parameters: [P, P, P, I, I, I, I, I, I, I, I, I], result: I },
  conv2d_backward_weights: {
    parameters: [P, P, P, P, I, I, I, I, I, I, I, I, I],
    result: I,
  },
  batchnorm_forward_train: { parameters: [P, P, P, P, P, P, I, I, I, I, F], result: I },
  batchnorm_forward_infer: { parameters: [P, P, P, P, P, P, I, I, I, I, F], result: I },
  batchnorm_backward: { parameters: [P, P, P, P, P, P, P, P, I, I, I, I, F], result: I },
  maxpool2d_forward: { parameters: [P, P, I, I, I, I, I, I, I], result: I },
  maxpool2d_backward: { parameters: [P, P, P, I, I, I, I, I, I, I], result: I },
  avgpool_global_forward: { parameters: [P, P, I, I, I, I], result: I },
  avgpool_global_backward: { parameters: [P, P, I, I, I, I], result: I },
  linear_forward: { parameters: [P, P, P, P, I, I, I], result: I },
  linear_backward: { parameters: [P, P, P, P, P, P, I, I, I], result: I },
  unary_forward: { parameters: [P, P, L, I], result: I },
  unary_backward: { parameters: [P, P, P, P, L, I], result: I },
  scale_forward: { parameters: [P, P, F, F, L], result: I },
  binary_forward: { parameters: [P, P, P, I, I, I, I, I, I, I, I, I], result: I },
  sum_to_forward: { parameters: [P, P, I, I, I, I, I, I, I, I], result: I },
  broadcast_forward: { parameters: [P, P, I, I, I, I, I, I, I, I], result: I },
  softmax_forward: { parameters: [P, P, I, I], result: I },
  softmax_backward: { parameters: [P, P, P, I, I], result: I },
  aff_fuse_forward: { parameters: [P, P, P, P, P, F, I, I, I, I], result: I },
  aff_fuse_backward: { parameters: [P, P, P, P, P, P, P, P, P, F, I, I, I, I], result: I },
  cross_entropy_forward: { parameters: [P, P, P, P, P, I, I], result: I },
  cross_entropy_backward: { parameters: [P, P, P, P, P, I, I], result: I },
  dropout_forward: { parameters: [P, P, P, L, F, "u32"], result: I },
  adamw_update: { parameters: [P, P, P, P, L, F, F, F, F, F, I], result: I },
} as const satisfies Deno.ForeignLibraryInterface;

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

function pn(s: Storage | null): Deno.PointerObject | null {
  return s === null ? null : (s as NativeStorage).ptr;
}

/** Reads a C string returned by the library ("" for NULL). */
export function cString(ptr: Deno.PointerValue): string {
  return ptr === null ? "" : Deno.UnsafePointerView.getCString(ptr);
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

/** A Backend over an fbp.h library. */
export class NativeBackend implements Backend {
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
    this.name = name;
    this.#lib = lib;
    this.#s = lib.symbols;
    this.libraryPath = libraryPath;
    if (this.#s.fbp_init() !== 0) throw initError(cString(this.#s.fbp_last_error()));
    this.info = cString(this.#s.fbp_backend_info());
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

  fill(out: Storage, value: number, n: number): void {
    if (this.#s.fill_forward(p(out), value, BigInt(n)) !== 0) this.#fail("fill_forward");
  }
  copy(
    out: Storage,
    outOffset: number,
    inp: Storage,
    inOffset: number,
    n: number,
    accumulate: boolean,
  ): void {
    const rc = this.#s.copy_forward(
      p(out),
      BigInt(outOffset),
      p(inp),
      BigInt(inOffset),
      BigInt(n),
      accumulate ? 1 : 0,
    );
    if (rc !== 0) this.#fail("copy_forward");
  }

  conv2dForward(
    out: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage | null,
    s: ConvSizes,
  ): void {
    const rc = this.#s.conv2d_forward(
      p(out),
      p(inp),
      p(weight),
      pn(bias),
      s.N,
      s.C,
      s.H,
      s.W,
      s.K,
      s.R,
      s.S,
      s.stride,
      s.pad,
    );
    if (rc !== 0) this.#fail("conv2d_forward");
  }
  conv2dBackwardData(dinp: Storage, dout: Storage, weight: Storage, s: ConvSizes): void {
    const rc = this.#s.conv2d_backward_data(
      p(dinp),
      p(dout),
      p(weight),
      s.N,
      s.C,
      s.H,
      s.W,
      s.K,
      s.R,
      s.S,
      s.stride,
      s.pad,
    );
    if (rc !== 0) this.#fail("conv2d_backward_data");
  }
  conv2dBackwardWeights(
    dweight: Storage,
    dbias: Storage | null,
    dout: Storage,
    inp: Storage,
    s: ConvSizes,
  ): void {
    const rc = this.#s.conv2d_backward_weights(
      p(dweight),
      pn(dbias),
      p(dout),
      p(inp),
      s.N,
      s.C,
      s.H,
      s.W,
      s.K,
      s.R,
      s.S,
      s.stride,
      s.pad,
    );
    if (rc !== 0) this.#fail("conv2d_backward_weights");
  }

  batchnormForwardTrain(
    out: Storage,
    mean: Storage,
    variance: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage,
    s: NchwSizes,
    eps: number,
  ): void {
    const rc = this.#s.batchnorm_forward_train(
      p(out),
      p(mean),
      p(variance),
      p(inp),
      p(weight),
      p(bias),
      s.N,
      s.C,
      s.H,
      s.W,
      eps,
    );
    if (rc !== 0) this.#fail("batchnorm_forward_train");
  }
  batchnormForwardInfer(
    out: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage,
    mean: Storage,
    variance: Storage,
    s: NchwSizes,
    eps: number,
  ): void {
    const rc = this.#s.batchnorm_forward_infer(
      p(out),
      p(inp),
      p(weight),
      p(bias),
      p(mean),
      p(variance),
      s.N,
      s.C,
      s.H,
      s.W,
      eps,
    );
    if (rc !== 0) this.#fail("batchnorm_forward_infer");
  }
  batchnormBackward(
    dinp: Storage,
    dweight: Storage,
    dbias: Storage,
    dout: Storage,
    inp: Storage,
    mean: Storage,
    variance: Storage,
    weight: Storage,
    s: NchwSizes,
    eps: number,
  ): void {
    const rc = this.#s.batchnorm_backward(
      p(dinp),
      p(dweight),
      p(dbias),
      p(dout),
      p(inp),
      p(mean),
      p(variance),
      p(weight),
      s.N,
      s.C,
      s.H,
      s.W,
      eps,
    );
    if (rc !== 0) this.#fail("batchnorm_backward");
  }

  maxpool2dForward(out: Storage, inp: Storage, s: PoolSizes): void {
    const rc = this.#s.maxpool2d_forward(
      p(out),
      p(inp),
      s.N,
      s.C,
      s.H,
      s.W,
      s.kernel,
      s.stride,
      s.pad,
    );
    if (rc !== 0) this.#fail("maxpool2d_forward");
  }
  maxpool2dBackward(dinp: Storage, dout: Storage, inp: Storage, s: PoolSizes): void {
    const rc = this.#s.maxpool2d_backward(
      p(dinp),
      p(dout),
      p(inp),
      s.N,
      s.C,
      s.H,
      s.W,
      s.kernel,
      s.stride,
      s.pad,
    );
    if (rc !== 0) this.#fail("maxpool2d_backward");
  }
  avgpoolGlobalForward(out: Storage, inp: Storage, s: NchwSizes): void {
    if (this.#s.avgpool_global_forward(p(out), p(inp), s.N, s.C, s.H, s.W) !== 0) {
      this.#fail("avgpool_global_forward");
    }
  }
  avgpoolGlobalBackward(dinp: Storage, dout: Storage, s: NchwSizes): void {
    if (this.#s.avgpool_global_backward(p(dinp), p(dout), s.N, s.C, s.H, s.W) !== 0) {
      this.#fail("avgpool_global_backward");
    }
  }

  linearForward(
    out: Storage,
    inp: Storage,
    weight: Storage,
    bias: Storage | null,
    N: number,
    I: number,
    O: number,
  ): void {
    if (this.#s.linear_forward(p(out), p(inp), p(weight), pn(bias), N, I, O) !== 0) {
      this.#fail("linear_forward");
    }
  }
  linearBackward(
    dinp: Storage | null,
    dweight: Storage,
    dbias: Storage | null,
    dout: Storage,
    inp: Storage,
    weight: Storage,
    N: number,
    I: number,
    O: number,
  ): void {
    const rc = this.#s.linear_backward(
      pn(dinp),
      p(dweight),
      pn(dbias),
      p(dout),
      p(inp),
      p(weight),
      N,
      I,
      O,
    );
    if (rc !== 0) this.#fail("linear_backward");
  }

  unaryForward(out: Storage, inp: Storage, n: number, op: UnaryOpName): void {
    if (this.#s.unary_forward(p(out), p(inp), BigInt(n), UnaryOp[op]) !== 0) {
      this.#fail("unary_forward");
    }
  }
  unaryBackward(
    dinp: Storage,
    dout: Storage,
    inp: Storage,
    out: Storage,
    n: number,
    op: UnaryOpName,
  ): void {
    const rc = this.#s.unary_backward(p(dinp), p(dout), p(inp), p(out), BigInt(n), UnaryOp[op]);
    if (rc !== 0) this.#fail("unary_backward");
  }
  scale(out: Storage, inp: Storage, alpha: number, beta: number, n: number): void {
    if (this.#s.scale_forward(p(out), p(inp), alpha, beta, BigInt(n)) !== 0) {
      this.#fail("scale_forward");
    }
  }
  binaryForward(
    out: Storage,
    a: Storage,
    b: Storage,
    aShape: Shape4,
    bShape: Shape4,
    op: BinaryOpName,
  ): void {
    const rc = this.#s.binary_forward(
      p(out),
      p(a),
      p(b),
      aShape[0],
      aShape[1],
      aShape[2],
      aShape[3],
      bShape[0],
      bShape[1],
      bShape[2],
      bShape[3],
      BinaryOp[op],
    );
    if (rc !== 0) this.#fail("binary_forward");
  }
  sumTo(out: Storage, inp: Storage, inShape: Shape4, outShape: Shape4): void {
    this.#reshape4("sum_to_forward", out, inp, inShape, outShape);
  }
  broadcastTo(out: Storage, inp: Storage, inShape: Shape4, outShape: Shape4): void {
    this.#reshape4("broadcast_forward", out, inp, inShape, outShape);
  }
  /** The two fbp.h kernels that map an (i0..i3) input onto an (o0..o3) output. */
  #reshape4(
    fn: "sum_to_forward" | "broadcast_forward",
    out: Storage,
    inp: Storage,
    [i0, i1, i2, i3]: Shape4,
    [o0, o1, o2, o3]: Shape4,
  ): void {
    if (this.#s[fn](p(out), p(inp), i0, i1, i2, i3, o0, o1, o2, o3) !== 0) this.#fail(fn);
  }
  softmaxForward(out: Storage, inp: Storage, rows: number, cols: number): void {
    if (this.#s.softmax_forward(p(out), p(inp), rows, cols) !== 0) {
      this.#fail("softmax_forward");
    }
  }
  softmaxBackward(
    dinp: Storage,
    dout: Storage,
    out: Storage,
    rows: number,
    cols: number,
  ): void {
    if (this.#s.softmax_backward(p(dinp), p(dout), p(out), rows, cols) !== 0) {
      this.#fail("softmax_backward");
    }
  }

  affFuseForward(
    out: Storage,
    S: Storage,
    F: Storage,
    L: Storage,
    G: Storage,
    scale: number,
    s: NchwSizes,
  ): void {
    const rc = this.#s.aff_fuse_forward(p(out), p(S), p(F), p(L), p(G), scale, s.N, s.C, s.H, s.W);
    if (rc !== 0) this.#fail("aff_fuse_forward");
  }
  affFuseBackward(
    dS: Storage,
    dF: Storage,
    dL: Storage,
    dG: Storage,
    dout: Storage,
    S: Storage,
    F: Storage,
    L: Storage,
    G: Storage,
    scale: number,
    s: NchwSizes,
  ): void {
    const rc = this.#s.aff_fuse_backward(
      p(dS),
      p(dF),
      p(dL),
      p(dG),
      p(dout),
      p(S),
      p(F),
      p(L),
      p(G),
      scale,
      s.N,
      s.C,
      s.H,
      s.W,
    );
    if (rc !== 0) this.#fail("aff_fuse_backward");
  }

  crossEntropyForward(
    loss: Storage,
    probs: Storage,
    logits: Storage,
    targets: Storage,
    weights: Storage | null,
    N: number,
    K: number,
  ): void {
    const rc = this.#s.cross_entropy_forward(
      p(loss),
      p(probs),
      p(logits),
      p(targets),
      pn(weights),
      N,
      K,
    );
    if (rc !== 0) this.#fail("cross_entropy_forward");
  }
  crossEntropyBackward(
    dlogits: Storage,
    dloss: Storage,
    probs: Storage,
    targets: Storage,
    weights: Storage | null,
    N: number,
    K: number,
  ): void {
    const rc = this.#s.cross_entropy_backward(
      p(dlogits),
      p(dloss),
      p(probs),
      p(targets),
      pn(weights),
      N,
      K,
    );
    if (rc !== 0) this.#fail("cross_entropy_backward");
  }

  dropoutForward(
    out: Storage,
    mask: Storage,
    inp: Storage,
    n: number,
    p_: number,
    seed: number,
  ): void {
    const rc = this.#s.dropout_forward(p(out), p(mask), p(inp), BigInt(n), p_, seed >>> 0);
    if (rc !== 0) this.#fail("dropout_forward");
  }

  adamwUpdate(
    param: Storage,
    m: Storage,
    v: Storage,
    grad: Storage,
    n: number,
    h: AdamWHyper,
    step: number,
  ): void {
    const rc = this.#s.adamw_update(
      p(param),
      p(m),
      p(v),
      p(grad),
      BigInt(n),
      h.lr,
      h.beta1,
      h.beta2,
      h.eps,
      h.weightDecay,
      step,
    );
    if (rc !== 0) this.#fail("adamw_update");
  }
}
