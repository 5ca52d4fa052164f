/*
 * elementwise.cu — unary functions (relu … exp, silu, hardswish, hardsigmoid, gelu, relu6),
 * affine scale, 4-D broadcasting binary ops, sum_to, broadcast_to and row softmax as CUDA
 * kernels.
 *
 * Why these shapes: elementwise kernels are memory-bound, so each is one grid-stride pass
 * with the op a template parameter (no per-element switch). Broadcasting decomposes the
 * output index with 32-bit arithmetic whenever the tensor has fewer than 2^31 elements
 * (64-bit division is several times slower on the GPU); fbp_index32_ok (launch.h)
 * decides, counting the stride of the last step, so a loop never wraps. Reductions (sum_to,
 * softmax sums) accumulate in double in a fixed order, as the cpu backend does, so results do not
 * depend on the launch size and repeat bit for bit. Math follows the cpu backend's float
 * expressions (expf, logf; no fast-math intrinsics).
 */
#include <math.h>

#include "internal.cuh"

/* ---- unary ---------------------------------------------------------------------------- */

#define GELU_INV_SQRT_2PI 0.3989422804014327f /* 1/√(2π) */

/* min(max(x + 3, 0), 6)/6, with NaN propagating (comparisons, as the cpu loops). */
static __device__ __forceinline__ float hard01(float x) {
  float t = x + 3.0f;
  t = t < 0.0f ? 0.0f : t;
  t = t > 6.0f ? 6.0f : t;
  return t * (1.0f / 6.0f);
}

template <int OP>
static __global__ void unary_kernel(float *__restrict__ out, const float *__restrict__ inp,
                                    int64_t n) {
  GRID_STRIDE(i, n) {
    float x = inp[i];
    float y;
    if (OP == FBP_RELU) y = x < 0.0f ? 0.0f : x; /* NaN propagates */
    else if (OP == FBP_SIGMOID) y = 1.0f / (1.0f + expf(-x));
    else if (OP == FBP_LOG) y = logf(x);
    else if (OP == FBP_ABS) y = fabsf(x);
    else if (OP == FBP_EXP) y = expf(x);
    else if (OP == FBP_SILU) y = x / (1.0f + expf(-x));
    else if (OP == FBP_HARDSWISH) y = x * hard01(x);
    else if (OP == FBP_HARDSIGMOID) y = hard01(x);
    else if (OP == FBP_GELU) y = 0.5f * x * erfcf(-x * (float)M_SQRT1_2); /* x·Φ(x) */
    else { /* FBP_RELU6; NaN propagates */
      y = x < 0.0f ? 0.0f : x;
      y = y > 6.0f ? 6.0f : y;
    }
    out[i] = y;
  }
}

template <int OP>
static __global__ void unary_backward_kernel(float *__restrict__ dinp,
                                             const float *__restrict__ dout,
                                             const float *__restrict__ inp,
                                             const float *__restrict__ out, int64_t n) {
  GRID_STRIDE(i, n) {
    float g = dout[i], d;
    if (OP == FBP_RELU) d = inp[i] > 0.0f ? g : 0.0f;
    else if (OP == FBP_SIGMOID) d = g * out[i] * (1.0f - out[i]);
    else if (OP == FBP_LOG) d = g / inp[i];
    else if (OP == FBP_ABS) d = inp[i] > 0.0f ? g : inp[i] < 0.0f ? -g : 0.0f;
    else if (OP == FBP_EXP) d = g * out[i];
    else if (OP == FBP_SILU) {
      float x = inp[i], s = 1.0f / (1.0f + expf(-x));
      d = g * (s * (1.0f + x * (1.0f - s)));
    } else if (OP == FBP_HARDSWISH) { /* −0.5 at −3, as PyTorch; 1 from 3 */
      float x = inp[i];
      d = x < -3.0f ? 0.0f : x < 3.0f ? g * (x / 3.0f + 0.5f) : g;
    } else if (OP == FBP_HARDSIGMOID) {
      d = inp[i] > -3.0f && inp[i] < 3.0f ? g * (1.0f / 6.0f) : 0.0f;
    } else if (OP == FBP_GELU) { /* Φ(x) + x·φ(x) */
      float x = inp[i];
      float cdf = 0.5f * erfcf(-x * (float)M_SQRT1_2);
      float pdf = expf(-0.5f * x * x) * GELU_INV_SQRT_2PI;
      d = g * (cdf + x * pdf);
    } else { /* FBP_RELU6 */
      d = inp[i] > 0.0f && inp[i] < 6.0f ? g : 0.0f;
    }
    dinp[i] = d;
  }
}

/* The forward (dout NULL: y = op(inp)) or the backward (y = dinp) kernel of one op. */
template <int OP>
static void launch_unary(float *y, const float *dout, const float *inp, const float *out,
                         int64_t n) {
  unsigned g = fbp_grid(n, FBP_BLOCK);
  cudaStream_t s = fbp_stream();
  if (dout) unary_backward_kernel<OP><<<g, FBP_BLOCK, 0, s>>>(y, dout, inp, out, n);
  else unary_kernel<OP><<<g, FBP_BLOCK, 0, s>>>(y, inp, n);
}

/* Launches the kernel of op code `op` (FBP_RELU..FBP_RELU6, checked by abi.inc). */
static void dispatch_unary(int op, float *y, const float *dout, const float *inp,
                           const float *out, int64_t n) {
  switch (op) {
  case FBP_RELU: launch_unary<FBP_RELU>(y, dout, inp, out, n); break;
  case FBP_SIGMOID: launch_unary<FBP_SIGMOID>(y, dout, inp, out, n); break;
  case FBP_LOG: launch_unary<FBP_LOG>(y, dout, inp, out, n); break;
  case FBP_ABS: launch_unary<FBP_ABS>(y, dout, inp, out, n); break;
  case FBP_EXP: launch_unary<FBP_EXP>(y, dout, inp, out, n); break;
  case FBP_SILU: launch_unary<FBP_SILU>(y, dout, inp, out, n); break;
  case FBP_HARDSWISH: launch_unary<FBP_HARDSWISH>(y, dout, inp, out, n); break;
  case FBP_HARDSIGMOID: launch_unary<FBP_HARDSIGMOID>(y, dout, inp, out, n); break;
  case FBP_GELU: launch_unary<FBP_GELU>(y, dout, inp, out, n); break;
  default: launch_unary<FBP_RELU6>(y, dout, inp, out, n); break;
  }
}

int impl_unary_forward(float *out, const float *inp, int64_t n, int op) {
  dispatch_unary(op, out, NULL, inp, NULL, n);
  LAUNCH_CHECK("unary_kernel");
  return 0;
}

/* Only the operand the derivative needs is read: out for sigmoid and exp, else inp. */
int impl_unary_backward(float *dinp, const float *dout, const float *inp, const float *out,
                        int64_t n, int op) {
  dispatch_unary(op, dinp, dout, inp, out, n);
  LAUNCH_CHECK("unary_backward_kernel");
  return 0;
}

static __global__ void scale_kernel(float *__restrict__ out, const float *__restrict__ inp,
                                    float alpha, float beta, int64_t n) {
  GRID_STRIDE(i, n) out[i] = alpha * inp[i] + beta;
}

int impl_scale_forward(float *out, const float *inp, float alpha, float beta, int64_t n) {
  scale_kernel<<<fbp_grid(n, FBP_BLOCK), FBP_BLOCK, 0, fbp_stream()>>>(out, inp, alpha, beta,
                                                                        n);
  LAUNCH_CHECK("scale_kernel");
  return 0;
}

/* ---- broadcasting --------------------------------------------------------------------- */

/* Elements of a 4-D shape (abi.inc has checked that it fits a buffer). */
static int64_t numel4(const int *s) { return (int64_t)s[0] * s[1] * s[2] * s[3]; }

/* Row-major strides of a 4-D shape with 0 for broadcast (size-1) dims of a larger shape. */
static void bstrides(const int *s, const int *full, int64_t *st) {
  int64_t acc = 1;
  for (int k = 3; k >= 0; k--) {
    st[k] = s[k] == 1 && full[k] != 1 ? 0 : acc;
    acc *= s[k];
  }
}

/* Output dims 1..3 and the strides of up to two operands (0 on broadcast dims). */
template <typename I>
struct Bcast {
  I o1, o2, o3;
  I sa[4], sb[4];
};

template <typename I>
static Bcast<I> make_bcast(const int *os, const int64_t *sa, const int64_t *sb) {
  Bcast<I> d;
  d.o1 = (I)os[1];
  d.o2 = (I)os[2];
  d.o3 = (I)os[3];
  for (int k = 0; k < 4; k++) {
    d.sa[k] = (I)sa[k];
    d.sb[k] = sb ? (I)sb[k] : 0;
  }
  return d;
}

/* Offsets into a and b of output element i. */
template <typename I>
static __device__ __forceinline__ void bcast_offsets(const Bcast<I> &d, I i, I *ai, I *bi) {
  I i3 = i % d.o3, t = i / d.o3;
  I i2 = t % d.o2;
  t /= d.o2;
  I i1 = t % d.o1, i0 = t / d.o1;
  *ai = i0 * d.sa[0] + i1 * d.sa[1] + i2 * d.sa[2] + i3 * d.sa[3];
  *bi = i0 * d.sb[0] + i1 * d.sb[1] + i2 * d.sb[2] + i3 * d.sb[3];
}

template <int OP>
static __device__ __forceinline__ float binop(float u, float v) {
  return OP == FBP_ADD ? u + v : OP == FBP_SUB ? u - v : OP == FBP_MUL ? u * v : u / v;
}

/* Same shapes (sa = sb = 1) or one side a single value (its step 0). */
template <int OP>
static __global__ void binary_flat_kernel(float *__restrict__ out, const float *__restrict__ a,
                                          const float *__restrict__ b, int64_t n, int sa,
                                          int sb) {
  GRID_STRIDE(i, n) out[i] = binop<OP>(a[i * sa], b[i * sb]);
}

template <int OP, typename I>
static __global__ void binary_kernel(float *__restrict__ out, const float *__restrict__ a,
                                     const float *__restrict__ b, I n, Bcast<I> d) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I ai, bi;
    bcast_offsets(d, i, &ai, &bi);
    out[i] = binop<OP>(a[ai], b[bi]);
  }
}

template <int OP>
static void launch_binary(float *out, const float *a, const float *b, int64_t total,
                          int64_t na, int64_t nb, const int *os, const int64_t *sta,
                          const int64_t *stb) {
  unsigned g = fbp_grid(total, FBP_BLOCK);
  cudaStream_t s = fbp_stream();
  if ((na == total && nb == total) || na == 1 || nb == 1) {
    binary_flat_kernel<OP><<<g, FBP_BLOCK, 0, s>>>(out, a, b, total, na == total ? 1 : 0,
                                                   nb == total ? 1 : 0);
  } else if (fbp_index32_ok(total, g, FBP_BLOCK)) {
    binary_kernel<OP, int><<<g, FBP_BLOCK, 0, s>>>(out, a, b, (int)total,
                                                   make_bcast<int>(os, sta, stb));
  } else {
    binary_kernel<OP, int64_t><<<g, FBP_BLOCK, 0, s>>>(out, a, b, total,
                                                       make_bcast<int64_t>(os, sta, stb));
  }
}

int impl_binary_forward(float *out, const float *a, const float *b, int a0, int a1, int a2,
                        int a3, int b0, int b1, int b2, int b3, int op) {
  int as[4] = {a0, a1, a2, a3}, bs[4] = {b0, b1, b2, b3}, os[4];
  for (int k = 0; k < 4; k++) os[k] = as[k] > bs[k] ? as[k] : bs[k];
  int64_t total = numel4(os), na = numel4(as), nb = numel4(bs);
  int64_t sta[4], stb[4];
  bstrides(as, os, sta);
  bstrides(bs, os, stb);
  switch (op) {
  case FBP_ADD: launch_binary<FBP_ADD>(out, a, b, total, na, nb, os, sta, stb); break;
  case FBP_SUB: launch_binary<FBP_SUB>(out, a, b, total, na, nb, os, sta, stb); break;
  case FBP_MUL: launch_binary<FBP_MUL>(out, a, b, total, na, nb, os, sta, stb); break;
  default: launch_binary<FBP_DIV>(out, a, b, total, na, nb, os, sta, stb); break;
  }
  LAUNCH_CHECK("binary_kernel");
  return 0;
}

template <typename I>
static __global__ void broadcast_kernel(float *__restrict__ out, const float *__restrict__ inp,
                                        I n, Bcast<I> d) {
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (I)gridDim.x * blockDim.x) {
    I xi, unused;
    bcast_offsets(d, i, &xi, &unused);
    out[i] = inp[xi];
  }
}

int impl_broadcast_forward(float *out, const float *inp, int i0, int i1, int i2, int i3, int o0,
                           int o1, int o2, int o3) {
  int is[4] = {i0, i1, i2, i3}, os[4] = {o0, o1, o2, o3};
  int64_t total = numel4(os);
  if (numel4(is) == total) {
    CUDA_CHECK(cudaMemcpyAsync(out, inp, (size_t)total * sizeof(float),
                               cudaMemcpyDeviceToDevice, fbp_stream()));
    return 0;
  }
  int64_t st[4];
  bstrides(is, os, st);
  unsigned g = fbp_grid(total, FBP_BLOCK);
  if (fbp_index32_ok(total, g, FBP_BLOCK))
    broadcast_kernel<int><<<g, FBP_BLOCK, 0, fbp_stream()>>>(out, inp, (int)total,
                                                             make_bcast<int>(os, st, NULL));
  else
    broadcast_kernel<int64_t><<<g, FBP_BLOCK, 0, fbp_stream()>>>(
        out, inp, total, make_bcast<int64_t>(os, st, NULL));
  LAUNCH_CHECK("broadcast_kernel");
  return 0;
}

/* ---- sum_to --------------------------------------------------------------------------- */

/* How an output element j maps to the input: base(j) from the output dims (reduced dims
 * have size 1 there, so they add nothing) and the reduced dims, outermost first and
 * padded with size-1 dims to four, walked inside. */
template <typename I>
struct SumPlan {
  I o1, o2, o3;  /* output dims 1..3 */
  I st[4];       /* input strides */
  I rs[4], rst[4]; /* reduced dims: sizes and input strides */
};

template <typename I>
static __device__ __forceinline__ I sum_base(const SumPlan<I> &p, I j) {
  I q3 = j % p.o3, t = j / p.o3;
  I q2 = t % p.o2;
  t /= p.o2;
  I q1 = t % p.o1, q0 = t / p.o1;
  return q0 * p.st[0] + q1 * p.st[1] + q2 * p.st[2] + q3 * p.st[3];
}

/* One thread per output element: short reductions over many outputs. */
template <typename I>
static __global__ void sum_thread_kernel(float *__restrict__ out, const float *__restrict__ inp,
                                         I nout, SumPlan<I> p) {
  for (I j = (I)blockIdx.x * blockDim.x + threadIdx.x; j < nout;
       j += (I)gridDim.x * blockDim.x) {
    const float *x = inp + sum_base(p, j);
    double s = 0;
    for (I a = 0; a < p.rs[0]; a++)
      for (I b = 0; b < p.rs[1]; b++)
        for (I c = 0; c < p.rs[2]; c++)
          for (I d = 0; d < p.rs[3]; d++)
            s += x[a * p.rst[0] + b * p.rst[1] + c * p.rst[2] + d * p.rst[3]];
    out[j] = (float)s;
  }
}

/* `splits` blocks per output element, each summing a contiguous share of the R reduced
 * elements (consecutive threads read consecutive ones where the innermost reduced dim is
 * contiguous). With one split the block writes the output, else a double partial. */
template <typename I>
static __global__ void sum_block_kernel(float *__restrict__ out, double *__restrict__ partial,
                                        const float *__restrict__ inp, I nout, I R, int splits,
                                        SumPlan<I> p) {
  I per = (R + splits - 1) / splits;
  for (I w = blockIdx.x; w < nout * splits; w += gridDim.x) {
    I j = w / splits, part = w % splits;
    const float *x = inp + sum_base(p, j);
    I lo = part * per, hi = lo + per < R ? lo + per : R;
    double s = 0;
    for (I r = lo + threadIdx.x; r < hi; r += blockDim.x) {
      I d = r % p.rs[3], t = r / p.rs[3];
      I c = t % p.rs[2];
      t /= p.rs[2];
      I b = t % p.rs[1], a = t / p.rs[1];
      s += x[a * p.rst[0] + b * p.rst[1] + c * p.rst[2] + d * p.rst[3]];
    }
    s = block_sum(s);
    if (threadIdx.x == 0) {
      if (splits == 1) out[j] = (float)s;
      else partial[w] = s;
    }
  }
}

/* Adds the `splits` partials of each output in order. */
static __global__ void sum_partials_kernel(float *__restrict__ out,
                                           const double *__restrict__ partial, int64_t nout,
                                           int splits) {
  GRID_STRIDE(j, nout) {
    double s = 0;
    for (int k = 0; k < splits; k++) s += partial[j * splits + k];
    out[j] = (float)s;
  }
}

template <typename I>
static int launch_sum(float *out, const float *inp, const int *is, const int *os, int64_t nout,
                      int64_t R) {
  SumPlan<I> p;
  p.o1 = (I)os[1];
  p.o2 = (I)os[2];
  p.o3 = (I)os[3];
  int64_t acc = 1;
  for (int k = 3; k >= 0; k--) {
    p.st[k] = (I)acc;
    acc *= is[k];
  }
  int m = 0;
  for (int k = 0; k < 4; k++) /* size-1 dims first, then the reduced ones in order */
    if (!(os[k] == 1 && is[k] > 1)) {
      p.rs[m] = 1;
      p.rst[m++] = 0;
    }
  for (int k = 0; k < 4; k++)
    if (os[k] == 1 && is[k] > 1) {
      p.rs[m] = (I)is[k];
      p.rst[m++] = p.st[k];
    }
  cudaStream_t s = fbp_stream();
  if (R < 256 && !(nout < 4096 && R >= 16)) {
    sum_thread_kernel<I><<<fbp_grid(nout, FBP_BLOCK), FBP_BLOCK, 0, s>>>(out, inp, (I)nout, p);
    LAUNCH_CHECK("sum_thread_kernel");
    return 0;
  }
  int threads = R >= 256 ? 256 : (int)((R + 31) / 32 * 32);
  /* Few outputs over long reductions: split each so the device has ~4 blocks per SM. */
  int splits = fbp_reduce_splits(nout, R, threads, fbp_sm_count());
  double *partial = NULL;
  if (splits > 1) {
    partial = (double *)fbp_scratch((size_t)(nout * splits) * sizeof(double), "sum_to_forward");
    if (!partial) return 1;
  }
  int64_t blocks = nout * splits;
  unsigned g = (unsigned)(blocks < 65536 ? blocks : 65536);
  sum_block_kernel<I><<<g, threads, 0, s>>>(out, partial, inp, (I)nout, (I)R, splits, p);
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && splits > 1) {
    sum_partials_kernel<<<fbp_grid(nout, FBP_BLOCK), FBP_BLOCK, 0, s>>>(out, partial, nout,
                                                                         splits);
    e = cudaGetLastError();
  }
  fbp_scratch_free(partial);
  if (e != cudaSuccess) return fbp_cuda_error(__FILE__, __LINE__, "sum_block_kernel", e);
  return 0;
}

int fbp_sum_to(float *out, const float *inp, const int *is, const int *os) {
  int64_t total = numel4(is), nout = numel4(os);
  if (nout == total) {
    CUDA_CHECK(cudaMemcpyAsync(out, inp, (size_t)total * sizeof(float),
                               cudaMemcpyDeviceToDevice, fbp_stream()));
    return 0;
  }
  int64_t R = total / nout;
  /* int indices when every index a sum kernel forms fits: the input's, plus one stride of
   * the largest grid either kernel uses. */
  return fbp_index32_ok(total, FBP_MAX_GRID, FBP_BLOCK) ? launch_sum<int>(out, inp, is, os, nout, R)
                           : launch_sum<int64_t>(out, inp, is, os, nout, R);
}

int impl_sum_to_forward(float *out, const float *inp, int i0, int i1, int i2, int i3, int o0,
                        int o1, int o2, int o3) {
  int is[4] = {i0, i1, i2, i3}, os[4] = {o0, o1, o2, o3};
  return fbp_sum_to(out, inp, is, os);
}

/* ---- softmax -------------------------------------------------------------------------- */

/* One warp per row. */
static __global__ void softmax_kernel(float *__restrict__ out, const float *__restrict__ inp,
                                      int rows, int cols) {
  WARP_ROW_STRIDE(r, rows) {
    float mx;
    warp_softmax_row(out + r * cols, inp + r * cols, cols, &mx);
  }
}

static __global__ void softmax_backward_kernel(float *__restrict__ dinp,
                                               const float *__restrict__ dout,
                                               const float *__restrict__ out, int rows,
                                               int cols) {
  int lane = threadIdx.x & 31;
  WARP_ROW_STRIDE(r, rows) {
    const float *dy = dout + r * cols, *y = out + r * cols;
    float *dx = dinp + r * cols;
    double dot = 0;
    for (int c = lane; c < cols; c += 32) dot += (double)dy[c] * y[c];
    float d = (float)warp_sum(dot);
    for (int c = lane; c < cols; c += 32) dx[c] = y[c] * (dy[c] - d);
  }
}

int impl_softmax_forward(float *out, const float *inp, int rows, int cols) {
  softmax_kernel<<<fbp_grid(rows, WARP_ROWS), FBP_BLOCK, 0, fbp_stream()>>>(out, inp, rows, cols);
  LAUNCH_CHECK("softmax_kernel");
  return 0;
}

int impl_softmax_backward(float *dinp, const float *dout, const float *out, int rows, int cols) {
  softmax_backward_kernel<<<fbp_grid(rows, WARP_ROWS), FBP_BLOCK, 0, fbp_stream()>>>(
      dinp, dout, out, rows, cols);
  LAUNCH_CHECK("softmax_backward_kernel");
  return 0;
}
