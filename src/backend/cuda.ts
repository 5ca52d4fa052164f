/**
 * The CUDA backend: binds native/build/libfbp_cuda.so (native/cuda/*.cu: own kernels, with
 * cuDNN 9 and cuBLAS opened by the library at run time) with Deno.dlopen, the same ABI as
 * the CPU backend (native/include/fbp.h).
 *
 * Storages hold device pointers from the library's caching allocator. Every kernel is
 * queued on one CUDA stream and returns at once; only copyOut (and sync) wait for the
 * device, so host↔device traffic happens where the caller asks for it: a batch's input,
 * the loss read-back, checkpoints. A non-zero status becomes an Error with the library's
 * fbp_last_error() text; a fault inside a queued kernel surfaces at the next waiting call.
 *
 * Without a usable GPU (no driver, no device, no cuDNN/cuBLAS) the library still loads
 * and fbp_init says why; {@link loadCudaBackend} then throws a {@link CudaUnavailableError}
 * such as "Cannot load the CUDA backend: runtime.cu:117: no CUDA device: cudaGetDeviceCount
 * returned 35 (CUDA driver version is insufficient for CUDA runtime version)".
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
import { displayPath, ensureCudaLibrary } from "./native_build.ts";

const P = "pointer", I = "i32", F = "f32", L = "i64";

/**
 * The functions of native/include/fbp.h as Deno FFI signatures (every backend library
 * exports exactly these). int64_t sizes are passed as BigInt, which keeps V8's fast path.
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

type Library = Deno.DynamicLibrary<typeof FBP_ABI_SYMBOLS>;
type Ptr = Deno.PointerObject | null;

/**
 * The CUDA backend cannot run here: no nvcc to build it, no device or driver, or cuDNN /
 * cuBLAS missing. `loadBackend("auto")` falls back to the CPU on this error; any other
 * error (e.g. a failed build) is a bug and is not swallowed.
 */
export class CudaUnavailableError extends Error {
  override name = "CudaUnavailableError";
}

/** CUDA storage: a device pointer from fbp_alloc; `ptr` is null once freed. */
export class CudaStorage implements Storage {
  constructor(public ptr: Deno.PointerObject | null, readonly size: number) {}
}

function p(s: Storage): Ptr {
  return (s as CudaStorage).ptr;
}

function pn(s: Storage | null): Ptr {
  return s === null ? null : (s as CudaStorage).ptr;
}

function cString(ptr: Deno.PointerValue): string {
  return ptr === null ? "" : Deno.UnsafePointerView.getCString(ptr);
}

/** The native CUDA backend (own kernels, cuDNN, cuBLAS). */
export class CudaBackend implements Backend {
  readonly name = "cuda";
  /** Path of the loaded library. */
  readonly libraryPath: string;
  /** The library's description line: device, CUDA, cuDNN and cuBLAS versions. */
  readonly info: string;
  #s: Library["symbols"];

  /**
   * Wraps an opened library and initialises it (use {@link loadCudaBackend}).
   * @throws {CudaUnavailableError} when fbp_init fails (no device, driver or libraries)
   */
  constructor(lib: Library, libraryPath: string) {
    this.#s = lib.symbols;
    this.libraryPath = libraryPath;
    if (this.#s.fbp_init() !== 0) {
      throw new CudaUnavailableError(
        `Cannot load the CUDA backend: ${cString(this.#s.fbp_last_error())}`,
      );
    }
    this.info = cString(this.#s.fbp_backend_info());
  }

  #check(rc: number, kernel: string): void {
    if (rc !== 0) {
      throw new Error(`Cannot run kernel "${kernel}": ${cString(this.#s.fbp_last_error())}`);
    }
  }

  alloc(n: number): Storage {
    const ptr = this.#s.fbp_alloc(BigInt(n));
    if (ptr === null) this.#check(1, "fbp_alloc");
    return new CudaStorage(ptr, n);
  }
  free(s: Storage): void {
    const st = s as CudaStorage;
    if (st.ptr === null) return;
    this.#check(this.#s.fbp_free(st.ptr), "fbp_free");
    st.ptr = null;
  }
  copyIn(dst: Storage, src: Float32Array): void {
    if (src.length !== dst.size) {
      throw new RangeError(
        `Cannot copy in: source has ${src.length} floats, storage holds ${dst.size}`,
      );
    }
    this.#check(this.#s.fbp_copy_in(p(dst), src, BigInt(src.length)), "fbp_copy_in");
  }
  copyOut(src: Storage): Float32Array {
    const out = new Float32Array(src.size);
    this.#check(this.#s.fbp_copy_out(out, p(src), BigInt(src.size)), "fbp_copy_out");
    return out;
  }
  sync(): void {
    this.#check(this.#s.fbp_sync(), "fbp_sync");
  }

  fill(out: Storage, value: number, n: number): void {
    this.#check(this.#s.fill_forward(p(out), value, BigInt(n)), "fill_forward");
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
    this.#check(rc, "copy_forward");
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
    this.#check(rc, "conv2d_forward");
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
    this.#check(rc, "conv2d_backward_data");
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
    this.#check(rc, "conv2d_backward_weights");
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
    this.#check(rc, "batchnorm_forward_train");
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
    this.#check(rc, "batchnorm_forward_infer");
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
    this.#check(rc, "batchnorm_backward");
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
    this.#check(rc, "maxpool2d_forward");
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
    this.#check(rc, "maxpool2d_backward");
  }
  avgpoolGlobalForward(out: Storage, inp: Storage, s: NchwSizes): void {
    const rc = this.#s.avgpool_global_forward(p(out), p(inp), s.N, s.C, s.H, s.W);
    this.#check(rc, "avgpool_global_forward");
  }
  avgpoolGlobalBackward(dinp: Storage, dout: Storage, s: NchwSizes): void {
    const rc = this.#s.avgpool_global_backward(p(dinp), p(dout), s.N, s.C, s.H, s.W);
    this.#check(rc, "avgpool_global_backward");
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
    const rc = this.#s.linear_forward(p(out), p(inp), p(weight), pn(bias), N, I, O);
    this.#check(rc, "linear_forward");
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
    this.#check(rc, "linear_backward");
  }

  unaryForward(out: Storage, inp: Storage, n: number, op: UnaryOpName): void {
    this.#check(this.#s.unary_forward(p(out), p(inp), BigInt(n), UnaryOp[op]), "unary_forward");
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
    this.#check(rc, "unary_backward");
  }
  scale(out: Storage, inp: Storage, alpha: number, beta: number, n: number): void {
    this.#check(this.#s.scale_forward(p(out), p(inp), alpha, beta, BigInt(n)), "scale_forward");
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
    this.#check(rc, "binary_forward");
  }
  sumTo(out: Storage, inp: Storage, inShape: Shape4, outShape: Shape4): void {
    const rc = this.#s.sum_to_forward(
      p(out),
      p(inp),
      inShape[0],
      inShape[1],
      inShape[2],
      inShape[3],
      outShape[0],
      outShape[1],
      outShape[2],
      outShape[3],
    );
    this.#check(rc, "sum_to_forward");
  }
  broadcastTo(out: Storage, inp: Storage, inShape: Shape4, outShape: Shape4): void {
    const rc = this.#s.broadcast_forward(
      p(out),
      p(inp),
      inShape[0],
      inShape[1],
      inShape[2],
      inShape[3],
      outShape[0],
      outShape[1],
      outShape[2],
      outShape[3],
    );
    this.#check(rc, "broadcast_forward");
  }
  softmaxForward(out: Storage, inp: Storage, rows: number, cols: number): void {
    this.#check(this.#s.softmax_forward(p(out), p(inp), rows, cols), "softmax_forward");
  }
  softmaxBackward(
    dinp: Storage,
    dout: Storage,
    out: Storage,
    rows: number,
    cols: number,
  ): void {
    const rc = this.#s.softmax_backward(p(dinp), p(dout), p(out), rows, cols);
    this.#check(rc, "softmax_backward");
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
    this.#check(rc, "aff_fuse_forward");
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
    this.#check(rc, "aff_fuse_backward");
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
    this.#check(rc, "cross_entropy_forward");
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
    this.#check(rc, "cross_entropy_backward");
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
    this.#check(rc, "dropout_forward");
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
    this.#check(rc, "adamw_update");
  }
}

/**
 * Opens a built CUDA library and initialises it. The library stays loaded even when
 * fbp_init fails (unloading a library that started the CUDA runtime gains nothing and
 * risks its exit handlers), so a second attempt reports the same reason at no cost.
 * @throws {Error} when the file is missing or is not a loadable library
 * @throws {CudaUnavailableError} when it loads but finds no usable device or libraries
 */
export function openCudaBackend(libPath: string): CudaBackend {
  let lib: Library;
  try {
    lib = Deno.dlopen(libPath, FBP_ABI_SYMBOLS);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    let exists = true;
    try {
      Deno.statSync(libPath);
    } catch {
      exists = false;
    }
    throw new Error(
      `Cannot load the CUDA backend library ${displayPath(libPath)}: ` +
        (exists ? why : "the file does not exist") + ". Run `deno task build`.",
    );
  }
  return new CudaBackend(lib, libPath);
}

/**
 * Builds the CUDA library when its sources changed (nvcc needed), then opens it. The
 * environment variable `FBP_CUDA_LIB` names a prebuilt library to open as is (e.g. one
 * built on another machine and carried to a GPU host without nvcc).
 * @throws {CudaUnavailableError} without nvcc (and no FBP_CUDA_LIB), or without a usable
 * GPU: the message says which call failed, e.g. "no CUDA device: cudaGetDeviceCount
 * returned 35 (…)" or "cannot open libcudnn.so.9: …"
 * @throws {Error} when the build fails or the library cannot be opened
 */
export async function loadCudaBackend(): Promise<CudaBackend> {
  const override = Deno.env.get("FBP_CUDA_LIB");
  if (override) return openCudaBackend(override);
  const path = await ensureCudaLibrary({ quiet: true });
  if (path === null) {
    throw new CudaUnavailableError(
      "Cannot load the CUDA backend: its library is not built and nvcc was not found " +
        "(install the CUDA toolkit or set NVCC; or set FBP_CUDA_LIB to a prebuilt " +
        "libfbp_cuda.so)",
    );
  }
  return openCudaBackend(path);
}
