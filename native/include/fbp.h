/*
 * fbp.h — the one C ABI that every fbp backend library exports (cpu: C over oneDNN,
 * cuda: CUDA + cuDNN/cuBLAS). The TypeScript side (the backends in src/backend) binds exactly these
 * symbols with Deno.dlopen, so a new backend is a new library with the same names.
 *
 * Conventions (llm.c style):
 * - `<op>_forward` / `<op>_backward`; outputs first, then inputs, then sizes; gradient
 *   buffers are prefixed `d`.
 * - Every kernel OVERWRITES its outputs (no `+=`); the autograd tape in TS accumulates.
 * - All tensors are float32, dense, row-major NCHW. Pointers are backend memory
 *   (host memory for cpu, device memory for cuda) obtained from fbp_alloc.
 * - Every function returns 0 on success and non-zero on failure; fbp_last_error() then
 *   returns a message that starts with "file:line: ".
 * - Pointers documented "nullable" may be NULL; the matching output is then skipped.
 *
 * Legend: N batch, C input channels, K output channels (conv) or classes (loss),
 * H×W input spatial size, P×Q output spatial size, R×S kernel size,
 * I/O linear input/output features, n element count.
 */
#ifndef FBP_H
#define FBP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- runtime ---------------------------------------------------------------------- */

/* Message of the last failure on this thread ("" when none). */
const char *fbp_last_error(void);
/* Name of the backend ("cpu", "cuda") and a version/description line. */
const char *fbp_backend_info(void);
/* Returns 0 when the backend can run here (a device exists, libraries loaded). */
int fbp_init(void);

/* Allocates n floats (64-byte aligned); NULL on failure (see fbp_last_error). */
float *fbp_alloc(int64_t n);
int fbp_free(float *p);
/* Returns the freed blocks the allocator keeps for reuse to the system (their memory
 * stops counting in the process's resident size); live allocations are untouched. */
int fbp_release_cache(void);
/* Host -> backend and backend -> host copies of n floats. */
int fbp_copy_in(float *dst, const float *host_src, int64_t n);
int fbp_copy_out(float *host_dst, const float *src, int64_t n);
/* Waits until every queued kernel has finished (no-op on cpu). */
int fbp_sync(void);

/* ---- memory ------------------------------------------------------------------------ */

/* out[i] = value, i < n */
int fill_forward(float *out, float value, int64_t n);
/* out[out_off + i] (=|+=) inp[in_off + i], i < n; accumulate selects +=. The two ranges
 * must not overlap when out and inp are the same buffer. */
int copy_forward(float *out, int64_t out_off, const float *inp, int64_t in_off, int64_t n,
                 int accumulate);

/* ---- convolution ------------------------------------------------------------------- */
/* P = (H + 2*pad - R)/stride + 1, Q = (W + 2*pad - S)/stride + 1 */

/* out (N,K,P,Q) = inp (N,C,H,W) * weight (K,C,R,S) + bias (K) [nullable] */
int conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                   int N, int C, int H, int W, int K, int R, int S, int stride, int pad);
/* dinp (N,C,H,W) from dout (N,K,P,Q) and weight (K,C,R,S) */
int conv2d_backward_data(float *dinp, const float *dout, const float *weight, int N, int C,
                         int H, int W, int K, int R, int S, int stride, int pad);
/* dweight (K,C,R,S) and dbias (K) [nullable] from dout (N,K,P,Q) and inp (N,C,H,W) */
int conv2d_backward_weights(float *dweight, float *dbias, const float *dout,
                            const float *inp, int N, int C, int H, int W, int K, int R,
                            int S, int stride, int pad);

/* ---- batch normalization (per channel C over N×H×W) --------------------------------- */

/* Training: out (N,C,H,W); mean (C) and var (C) receive the batch statistics (var is
 * the biased variance, as used for normalisation). */
int batchnorm_forward_train(float *out, float *mean, float *var, const float *inp,
                            const float *weight, const float *bias, int N, int C, int H,
                            int W, float eps);
/* Inference with given statistics mean (C), var (C). */
int batchnorm_forward_infer(float *out, const float *inp, const float *weight,
                            const float *bias, const float *mean, const float *var, int N,
                            int C, int H, int W, float eps);
/* Backward of the training forward (statistics are functions of inp). */
int batchnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                       const float *inp, const float *mean, const float *var,
                       const float *weight, int N, int C, int H, int W, float eps);

/* ---- pooling ----------------------------------------------------------------------- */

/* Max pool, square window `kernel`, padding counts as -inf. out (N,C,P,Q). */
int maxpool2d_forward(float *out, const float *inp, int N, int C, int H, int W, int kernel,
                      int stride, int pad);
/* dinp (N,C,H,W): dout routed to the first maximum of each window (recomputed from inp). */
int maxpool2d_backward(float *dinp, const float *dout, const float *inp, int N, int C,
                       int H, int W, int kernel, int stride, int pad);
/* Global average pool: out (N,C) = mean over H×W of inp (N,C,H,W). */
int avgpool_global_forward(float *out, const float *inp, int N, int C, int H, int W);
int avgpool_global_backward(float *dinp, const float *dout, int N, int C, int H, int W);

/* ---- linear ------------------------------------------------------------------------ */

/* out (N,O) = inp (N,I) · weight (O,I)^T + bias (O) [nullable] */
int linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                   int N, int I, int O);
/* dinp (N,I) [nullable], dweight (O,I), dbias (O) [nullable] */
int linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                    const float *inp, const float *weight, int N, int I, int O);

/* ---- elementwise ------------------------------------------------------------------- */

enum fbp_unary_op {
  FBP_RELU = 0,    /* max(x, 0), NaN propagates; gradient 0 at x <= 0 */
  FBP_SIGMOID = 1, /* 1/(1+e^-x); backward uses out */
  FBP_LOG = 2,     /* ln x */
  FBP_ABS = 3,     /* |x|; gradient sign(x), 0 at 0 */
  FBP_EXP = 4,     /* e^x; backward uses out */
};
/* out[i] = f(inp[i]) */
int unary_forward(float *out, const float *inp, int64_t n, int op);
/* dinp[i] = dout[i] * f'(inp[i]) (out = the forward result, used by sigmoid/exp) */
int unary_backward(float *dinp, const float *dout, const float *inp, const float *out,
                   int64_t n, int op);

/* out[i] = alpha * inp[i] + beta */
int scale_forward(float *out, const float *inp, float alpha, float beta, int64_t n);

enum fbp_binary_op { FBP_ADD = 0, FBP_SUB = 1, FBP_MUL = 2, FBP_DIV = 3 };
/* 4-D broadcasting: a is (a0,a1,a2,a3), b is (b0,b1,b2,b3); each dim pair is equal or
 * one of them is 1; out has the larger of each pair. */
int binary_forward(float *out, const float *a, const float *b, int a0, int a1, int a2,
                   int a3, int b0, int b1, int b2, int b3, int op);
/* Sums inp (i0,i1,i2,i3) down to (o0,o1,o2,o3), each o_k equal to i_k or 1. */
int sum_to_forward(float *out, const float *inp, int i0, int i1, int i2, int i3, int o0,
                   int o1, int o2, int o3);
/* Repeats inp (i0,i1,i2,i3) up to (o0,o1,o2,o3), each i_k equal to o_k or 1. */
int broadcast_forward(float *out, const float *inp, int i0, int i1, int i2, int i3, int o0,
                      int o1, int o2, int o3);

/* Row softmax: out (rows, cols) = softmax(inp) along cols. */
int softmax_forward(float *out, const float *inp, int rows, int cols);
/* dinp = out ⊙ (dout − Σ_cols dout ⊙ out) */
int softmax_backward(float *dinp, const float *dout, const float *out, int rows, int cols);

/* ---- attentional feature fusion (AFF, DESIGN.md §3) ------------------------------------ */

/* out (N,C,H,W) = relu(scale · (F + w ⊙ (S − F))), w = sigmoid(L + G) with G (N,C)
 * broadcast over H×W: S the shortcut, F the residual, L / G the local / global attention
 * logits. ReLU as in unary_forward (NaN propagates). */
int aff_fuse_forward(float *out, const float *S, const float *F, const float *L,
                     const float *G, float scale, int N, int C, int H, int W);
/* Backward of aff_fuse_forward, recomputing w and v = scale·(F + w⊙(S − F)) from the
 * inputs; with d = (v > 0 ? scale·dout : 0):
 *   dS = d·w,  dF = d·(1 − w),  dL = d·(S − F)·w·(1 − w)  (all (N,C,H,W)),
 *   dG (N,C) = Σ over H×W of dL. */
int aff_fuse_backward(float *dS, float *dF, float *dL, float *dG, const float *dout,
                      const float *S, const float *F, const float *L, const float *G,
                      float scale, int N, int C, int H, int W);

/* ---- loss -------------------------------------------------------------------------- */

/* loss (1) = (1/N) Σ_i w_i · (−log softmax(logits_i)[target_i]);
 * probs (N,K) receives softmax(logits); targets (N) hold class indices as floats;
 * weights (N) nullable (all 1). A target outside 0..K-1 is an error. */
int cross_entropy_forward(float *loss, float *probs, const float *logits,
                          const float *targets, const float *weights, int N, int K);
/* dlogits (N,K) = dloss[0] · w_i · (probs − onehot(target_i)) / N */
int cross_entropy_backward(float *dlogits, const float *dloss, const float *probs,
                           const float *targets, const float *weights, int N, int K);

/* ---- dropout ----------------------------------------------------------------------- */

/* mask[i] = keep ? 1/(1-p) : 0, out = inp ⊙ mask. keep ⇔ fbp_hash_uniform(seed, i) >= p,
 * where the hash (identical in every backend, so runs reproduce across them):
 *   h = (uint32)(i * 0x9E3779B9u + seed); h ^= h >> 16; h *= 0x85EBCA6Bu;
 *   h ^= h >> 13; h *= 0xC2B2AE35u; h ^= h >> 16; u = (h >> 8) / 16777216.0f
 * with i taken modulo 2^32. */
int dropout_forward(float *out, float *mask, const float *inp, int64_t n, float p,
                    uint32_t seed);

/* ---- optimizer --------------------------------------------------------------------- */

/* AdamW (decoupled weight decay, PyTorch semantics), step >= 1:
 *   param *= 1 − lr·wd; m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²;
 *   param −= lr · (m / (1−b1^step)) / (sqrt(v / (1−b2^step)) + eps) */
int adamw_update(float *param, float *m, float *v, const float *grad, int64_t n, float lr,
                 float beta1, float beta2, float eps, float weight_decay, int step);

#ifdef __cplusplus
}
#endif
#endif /* FBP_H */
